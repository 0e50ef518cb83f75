// Injected faults look to the real SDK v3 clients exactly like AWS's own: the right error name, and retried (or not)
// by the SDK's standard retry strategy as the reference says (section 5).
import { DescribeVpcsCommand, EC2Client } from "@aws-sdk/client-ec2";
import { DescribeTargetGroupsCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { ListHostedZonesCommand, Route53Client } from "@aws-sdk/client-route-53";
import type { CallRecord, FaultRule } from "../../harness/aws-proxy";
import { startWorld, TEST_CREDENTIALS, type World } from "../../harness/world";

jest.setTimeout(30_000);

let world: World;
beforeAll(async () => {
  world = await startWorld();
});
afterAll(() => world?.close());
beforeEach(() => {
  world.proxy.clearFaults();
  world.proxy.resetCalls();
});

/** One cheap read per service, through the proxy, with the SDK's default (standard, 3 attempts) retries. */
const services = {
  ec2: {
    operation: "DescribeVpcs",
    call: (maxAttempts?: number) =>
      new EC2Client(config(maxAttempts)).send(new DescribeVpcsCommand({})).then((r) => r.$metadata),
  },
  elasticloadbalancing: {
    operation: "DescribeTargetGroups",
    call: (maxAttempts?: number) =>
      new ElasticLoadBalancingV2Client(config(maxAttempts))
        .send(new DescribeTargetGroupsCommand({}))
        .then((r) => r.$metadata),
  },
  route53: {
    operation: "ListHostedZones",
    call: (maxAttempts?: number) =>
      new Route53Client(config(maxAttempts)).send(new ListHostedZonesCommand({})).then((r) => r.$metadata),
  },
} as const;

function config(maxAttempts?: number) {
  return {
    endpoint: world.proxy.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
    ...(maxAttempts !== undefined && { maxAttempts }),
  };
}

async function failure(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected the call to fail");
}

const summary = (calls: CallRecord[]) => calls.map((c) => [c.status, c.injected ?? "-"]);

describe.each([
  ["ec2", "RequestLimitExceeded", 503],
  ["elasticloadbalancing", "Throttling", 400],
  ["route53", "Throttling", 400],
] as const)("%s throttling", (service, errorName, status) => {
  const { operation, call } = services[service];

  it(`is parsed as ${errorName} (HTTP ${status})`, async () => {
    world.proxy.inject({ service, operation, kind: "throttle" });
    const e = await failure(call(1));
    expect(e.name).toBe(errorName);
    expect(e.$metadata?.httpStatusCode).toBe(status);
    expect(summary(world.proxy.calls)).toEqual([[status, "throttle"]]);
  });

  it("is retried: two throttles then success is one successful call in three attempts", async () => {
    world.proxy.inject({ service, operation, kind: "throttle", times: 2 });
    const metadata = await call();
    expect(metadata.attempts).toBe(3);
    expect(summary(world.proxy.calls)).toEqual([
      [status, "throttle"],
      [status, "throttle"],
      [200, "-"],
    ]);
  });
});

describe.each(["ec2", "elasticloadbalancing", "route53"] as const)("%s server errors and resets", (service) => {
  const { operation, call } = services[service];

  it.each([
    [503, "ServiceUnavailable"],
    [500, "InternalError"],
  ] as const)("a %d is parsed as %s and retried", async (status, errorName) => {
    const rule: FaultRule = { service, operation, kind: "5xx", status };
    world.proxy.inject(rule);
    const e = await failure(call(1));
    expect([e.name, e.$metadata?.httpStatusCode]).toEqual([errorName, status]);

    world.proxy.inject({ ...rule, times: 2 });
    expect((await call()).attempts).toBe(3);
  });

  it("a reset connection fails as a socket hang-up and is retried", async () => {
    world.proxy.inject({ service, operation, kind: "reset" });
    const e = await failure(call(1));
    // The handler names it TimeoutError (code ECONNRESET); under jest's separate realm the SDK re-wraps it as text.
    expect(`${e.name} ${e.message}`).toMatch(/TimeoutError.*socket hang up/);
    expect(summary(world.proxy.calls)).toEqual([[0, "reset"]]);

    world.proxy.inject({ service, operation, kind: "reset", times: 2 });
    expect((await call()).attempts).toBe(3);
  });
});

describe("fault rules", () => {
  it("latency delays the call, which then succeeds", async () => {
    world.proxy.inject({ service: "ec2", kind: "latency", latencyMs: 400 });
    const started = Date.now();
    await services.ec2.call();
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    expect(summary(world.proxy.calls)).toEqual([[200, "latency"]]);
  });

  it("Retry-After is sent and honoured by the SDK", async () => {
    world.proxy.inject({ service: "route53", kind: "throttle", retryAfterSeconds: 2 });
    const started = Date.now();
    expect((await services.route53.call()).attempts).toBe(2);
    // Without the header the first throttling retry waits at most 1 s (base 1000 ms × random).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_500);
  });

  it("matches by service and operation, and only the first `times` matching calls", async () => {
    world.proxy.inject({ service: "route53", operation: "GetHostedZone", kind: "5xx" });
    world.proxy.inject({ service: "ec2", kind: "5xx", times: 1 });
    await services.route53.call(1); // not GetHostedZone: untouched
    await failure(services.ec2.call(1));
    await services.ec2.call(1); // the rule is used up
    expect(world.proxy.calls.map((c) => [c.operation, c.injected ?? "-"])).toEqual([
      ["ListHostedZones", "-"],
      ["DescribeVpcs", "5xx"],
      ["DescribeVpcs", "-"],
    ]);
  });

  it("clearFaults drops pending rules", async () => {
    world.proxy.inject({ kind: "5xx", times: 5 });
    world.proxy.clearFaults();
    await services.ec2.call(1);
    expect(world.proxy.calls[0]?.injected).toBeUndefined();
  });
});
