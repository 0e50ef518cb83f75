// The proxy's token buckets: AWS's figures, divided by a scale, refilled by the clock, and a refusal in each service's
// own throttling shape that takes no token.
import { AssociateAddressCommand, DescribeAddressesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { DescribeTargetGroupsCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { ListHostedZonesCommand, Route53Client } from "@aws-sdk/client-route-53";
import { TokenBuckets } from "../../harness/aws-proxy-throttle";
import { startWorld, TEST_CREDENTIALS, type World } from "../../harness/world";

describe("token buckets", () => {
  let now = 0;
  const clock = () => now;
  beforeEach(() => {
    now = 1_000_000;
  });

  it("lets Route 53's burst through, then refuses until a token has refilled: account and operation buckets", () => {
    // ÷12.5: 4 burst, 0.8 per second.
    const b = new TokenBuckets(12.5, clock);
    const allowed = Array.from({ length: 6 }, () => b.take("route53", "ListResourceRecordSets"));
    expect(allowed).toEqual([true, true, true, true, false, false]);
    // The account bucket is shared: another operation is refused too.
    expect(b.take("route53", "GetChange")).toBe(false);
    now += 1_250; // one token at 0.8/s
    expect(b.take("route53", "GetChange")).toBe(true);
    expect(b.take("route53", "GetChange")).toBe(false);
  });

  it("gives each EC2 action its own bucket: reads 100/20, AssociateAddress 50/5", () => {
    const b = new TokenBuckets(50, clock); // reads 2 burst, 0.4/s; mutating 1 burst, 0.1/s
    expect([1, 2, 3].map(() => b.take("ec2", "DescribeAddresses"))).toEqual([true, true, false]);
    expect([1, 2].map(() => b.take("ec2", "AssociateAddress"))).toEqual([true, false]);
    now += 2_500; // one read token; a quarter of a mutating one
    expect(b.take("ec2", "DescribeAddresses")).toBe(true);
    expect(b.take("ec2", "AssociateAddress")).toBe(false);
    now += 7_500;
    expect(b.take("ec2", "AssociateAddress")).toBe(true);
  });

  it("shares one bucket between ELBv2's Describe calls", () => {
    const b = new TokenBuckets(20, clock); // 2 burst
    expect(b.take("elasticloadbalancing", "DescribeTargetGroups")).toBe(true);
    expect(b.take("elasticloadbalancing", "DescribeTargetHealth")).toBe(true);
    expect(b.take("elasticloadbalancing", "DescribeTargetHealth")).toBe(false);
    expect(b.take("elasticloadbalancing", "RegisterTargets")).toBe(true);
  });

  it("never holds more than the burst, and a refused call takes nothing", () => {
    const b = new TokenBuckets(25, clock); // Route 53: 2 burst, 0.4/s
    now += 3_600_000;
    expect([1, 2, 3].map(() => b.take("route53", "GetChange"))).toEqual([true, true, false]);
    for (let i = 0; i < 10; i++) b.take("route53", "GetChange");
    now += 2_500;
    expect(b.take("route53", "GetChange")).toBe(true);
    expect(b.stats().find((s) => s.name === "route53 (account)")).toEqual({
      name: "route53 (account)",
      burst: 2,
      perSecond: 0.4,
      taken: 3,
      refused: 11,
    });
  });
});

describe("the proxy with throttling on", () => {
  jest.setTimeout(30_000);
  let world: World;
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(() => world?.close());
  afterEach(() => {
    world.proxy.throttle(undefined);
    world.proxy.resetCalls();
  });

  const config = { region: "us-east-1", credentials: TEST_CREDENTIALS, maxAttempts: 1 };
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => {
        throw new Error("expected a refusal");
      },
      (e: unknown) => e as Error & { $metadata: { httpStatusCode?: number } },
    );

  it.each([
    [
      "route53",
      "Throttling",
      400,
      50,
      () => new Route53Client({ ...config, endpoint: world.proxy.endpoint }).send(new ListHostedZonesCommand({})),
    ],
    [
      "ec2",
      "RequestLimitExceeded",
      503,
      100,
      () => new EC2Client({ ...config, endpoint: world.proxy.endpoint }).send(new DescribeAddressesCommand({})),
    ],
    [
      "elbv2",
      "Throttling",
      400,
      40,
      () =>
        new ElasticLoadBalancingV2Client({ ...config, endpoint: world.proxy.endpoint }).send(
          new DescribeTargetGroupsCommand({}),
        ),
    ],
  ] as const)(
    "%s: an empty bucket answers %s (HTTP %d), recorded as throttled",
    async (_, name, status, scale, call) => {
      // Scaled to a burst of one token: the second call finds the bucket empty.
      world.proxy.throttle(scale);
      await call().catch(() => undefined);
      const e = await failure(call());
      expect([e.name, e.$metadata.httpStatusCode]).toEqual([name, status]);
      expect(world.proxy.calls.map((c) => c.throttled ?? false)).toEqual([false, true]);
      expect(world.proxy.calls[1]?.code).toBe(name);
    },
  );

  it("counts per bucket what it let through and refused; moto is reached only with a token", async () => {
    world.proxy.throttle(50); // AssociateAddress: 1 burst
    const ec2 = new EC2Client({ ...config, endpoint: world.proxy.endpoint });
    const attempt = () =>
      ec2.send(new AssociateAddressCommand({ AllocationId: "eipalloc-nonexistent", InstanceId: "i-nonexistent" }));
    const first = await failure(attempt());
    const second = await failure(attempt());
    // The first reached moto (which does not know the address); the second never left the proxy.
    expect(first.name).not.toBe("RequestLimitExceeded");
    expect(second.name).toBe("RequestLimitExceeded");
    expect(world.proxy.buckets()).toEqual([
      { name: "ec2 AssociateAddress", burst: 1, perSecond: 0.1, taken: 1, refused: 1 },
    ]);
  });

  it("is off again with throttle(undefined)", async () => {
    world.proxy.throttle(1000);
    world.proxy.throttle(undefined);
    const r53 = new Route53Client({ ...config, endpoint: world.proxy.endpoint });
    for (let i = 0; i < 3; i++) await r53.send(new ListHostedZonesCommand({}));
    expect(world.proxy.calls.filter((c) => c.throttled)).toEqual([]);
  });
});
