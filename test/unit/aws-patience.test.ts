// Patience to the deadline and a client-side budget per AWS bucket: the pure parts, then the door over real SDK clients
// against a loopback endpoint that answers as AWS does under throttling, with time on a fake clock.
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { RetryErrorInfo } from "@smithy/types";
import type { RateLimiter } from "@smithy/util-retry";
import type { Aws } from "../../agent/aws/clients";
import { createAwsClients } from "../../agent/aws/clients";
import {
  bucketOf,
  LAST_ATTEMPT_MS,
  MAX_DELAY_MS,
  PatientRetryStrategy,
  retryDelay,
  THROTTLING_BASE_MS,
  TRANSIENT_BASE_MS,
} from "../../agent/aws/patience";
import { AwsCallError } from "../../agent/core/errors";
import { silentLogger } from "../../agent/core/log";
import { awsError, type WireResponse } from "../harness/aws-wire";
import { fakeClock, type FakeClock } from "../support/fake-clock";

const throttling = { errorType: "THROTTLING" } as RetryErrorInfo;
const transient = { errorType: "TRANSIENT" } as RetryErrorInfo;

describe("the retry delay", () => {
  it("is full jitter: uniform below min(20 s, base × 2^retries), 1 s base for throttling, 100 ms otherwise", () => {
    const top = () => 0.999_999;
    expect([0, 1, 2, 3, 4, 5, 6, 12].map((n) => retryDelay(n, throttling, 0, top))).toEqual([
      999, 1999, 3999, 7999, 15_999, 19_999, 19_999, 19_999,
    ]);
    expect(retryDelay(3, transient, 0, top)).toBe(799);
    expect(retryDelay(8, throttling, 0, () => 0)).toBe(0);
    expect([THROTTLING_BASE_MS, TRANSIENT_BASE_MS, MAX_DELAY_MS]).toEqual([1000, 100, 20_000]);
  });

  it("honours Retry-After as the SDK does: at least the hint, at most 5 s more than the backoff", () => {
    const now = 1_000_000;
    const after = (s: number) => ({ ...throttling, retryAfterHint: new Date(now + s * 1000) });
    expect(retryDelay(0, after(3), now, () => 0.5)).toBe(3000);
    expect(retryDelay(0, after(60), now, () => 0.5)).toBe(5500);
    expect(retryDelay(4, after(1), now, () => 0.5)).toBe(8000);
  });
});

describe("PatientRetryStrategy", () => {
  const deadline = (clock: FakeClock, seconds: number) => ({
    at: clock.now() + seconds * 1000,
    signal: new AbortController().signal,
  });

  it("retries throttling far past the SDK's attempts, waiting on the clock, while the deadline allows", async () => {
    const clock = fakeClock();
    const strategy = new PatientRetryStrategy(deadline(clock, 300), clock, () => 0.5);
    let token = await strategy.acquireInitialRetryToken();
    for (let i = 0; i < 25; i++) token = await strategy.refreshRetryTokenForRetry(token, throttling);

    expect(token.getRetryCount()).toBe(25);
    expect(token.getRetryDelay()).toBe(0);
    expect(clock.sleeps.slice(0, 7)).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
    expect(clock.sleeps.reduce((a, b) => a + b)).toBe(15_500 + 20 * 10_000);
  });

  it("never waits into the last second before the deadline: the last wait is shortened, then it gives up", async () => {
    const clock = fakeClock();
    const d = deadline(clock, 30);
    const strategy = new PatientRetryStrategy(d, clock, () => 0.5);
    let token = await strategy.acquireInitialRetryToken();
    const refused = await (async () => {
      for (;;) token = await strategy.refreshRetryTokenForRetry(token, throttling);
    })().catch((e: unknown) => e);

    expect(refused).toEqual(new Error("no retry: the run's deadline is too close"));
    // 0.5 + 1 + 2 + 4 + 8 + 10 = 25.5 s, then 3.5 s of the next 10 s: the last attempt starts at 29 s.
    expect(clock.sleeps).toEqual([500, 1000, 2000, 4000, 8000, 10_000, 3500]);
    expect(clock.now()).toBe(d.at - LAST_ATTEMPT_MS);
  });

  it.each(["CLIENT_ERROR", "SERVER_ERROR"] as const)("does not retry a %s", async (errorType) => {
    const clock = fakeClock();
    const strategy = new PatientRetryStrategy(deadline(clock, 300), clock);
    const token = await strategy.acquireInitialRetryToken();
    await expect(strategy.refreshRetryTokenForRetry(token, { errorType })).rejects.toThrow("not retryable");
    expect(clock.sleeps).toEqual([]);
  });
});

describe("AWS's buckets as the agent budgets them", () => {
  it("one for Route 53's account, one per EC2 action, one for ELBv2's Describe calls", () => {
    expect(bucketOf("route53", "GetChange")).toBe(bucketOf("route53", "ChangeResourceRecordSets"));
    expect(bucketOf("ec2", "DescribeAddresses")).not.toBe(bucketOf("ec2", "AssociateAddress"));
    expect(bucketOf("elbv2", "DescribeTargetHealth")).toBe(bucketOf("elbv2", "DescribeTargetGroups"));
    expect(bucketOf("elbv2", "RegisterTargets")).not.toBe(bucketOf("elbv2", "DescribeTargetGroups"));
  });
});

describe("the door over real clients, under throttling", () => {
  // Answers each request with the next scripted response, and records when (by the fake clock) it arrived.
  let server: Server;
  let endpoint: string;
  let script: (path: string, n: number) => WireResponse | "reset";
  let arrivals: { path: string; at: number }[];
  let clock: FakeClock;
  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        const path = req.url ?? "/";
        arrivals.push({ path, at: clock.now() });
        const answer = script(path, arrivals.length);
        if (answer === "reset") {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body);
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  });

  const R53 = "https://route53.amazonaws.com/doc/2013-04-01/";
  const insync: WireResponse = {
    status: 200,
    headers: { "content-type": "text/xml" },
    body: `<GetChangeResponse xmlns="${R53}"><ChangeInfo><Id>/change/C1</Id><Status>INSYNC</Status><SubmittedAt>2026-11-21T12:00:00Z</SubmittedAt></ChangeInfo></GetChangeResponse>`,
  };
  const noAddresses: WireResponse = {
    status: 200,
    headers: { "content-type": "text/xml" },
    body: `<DescribeAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r</requestId><addressesSet/></DescribeAddressesResponse>`,
  };
  const r53Throttle = () => awsError("route53", 400, "Throttling", "Rate exceeded");
  const ec2Throttle = () => awsError("ec2", 503, "RequestLimitExceeded", "Request limit exceeded.");

  interface FakeLimiter extends RateLimiter {
    bucket: number;
    sends: number;
    updates: unknown[];
  }
  let limiters: FakeLimiter[];

  function door(deadlineSeconds: number): { aws: Aws; at: number } {
    clock = fakeClock();
    arrivals = [];
    limiters = [];
    const at = clock.now() + deadlineSeconds * 1000;
    const aws = createAwsClients({
      region: "us-east-1",
      env: { AWS_ENDPOINT_URL: endpoint },
      clock,
      deadline: { at, signal: new AbortController().signal },
      log: silentLogger,
      credentials: () => Promise.resolve({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
      // Credentials are injected: the instance profile is never read.
      imds: {
        getText: () => Promise.reject(new Error("no IMDS here")),
        getBytes: () => Promise.reject(new Error("no IMDS here")),
      },
      random: () => 0.5,
      rateLimiter: () => {
        const limiter: FakeLimiter = {
          bucket: limiters.length,
          sends: 0,
          updates: [],
          getSendToken: () => {
            limiter.sends += 1;
            return Promise.resolve();
          },
          updateClientSendingRate: (r: unknown) => {
            limiter.updates.push(r);
          },
        };
        limiters.push(limiter);
        return limiter;
      },
    });
    return { aws, at };
  }
  const getChange = (aws: Aws) => aws.call("route53", "C1", (sdk) => new sdk.GetChangeCommand({ Id: "C1" }));

  it("a storm of 20 throttles (more than twice the 8 attempts it used to allow) still ends in success", async () => {
    const { aws } = door(300);
    script = (_, n) => (n <= 20 ? r53Throttle() : insync);

    const out = await getChange(aws);
    aws.destroy();

    expect(out.ChangeInfo?.Status).toBe("INSYNC");
    expect(arrivals).toHaveLength(21);
    expect(out.$metadata.attempts).toBe(21);
    // Every attempt went through the bucket's budget and told it how it went: 20 throttles, then a success.
    expect(limiters).toHaveLength(1);
    expect(limiters[0]!.sends).toBe(21);
    expect(
      limiters[0]!.updates.filter((u) => (u as { error?: { name?: string } }).error?.name === "Throttling"),
    ).toHaveLength(20);
    expect(limiters[0]!.updates.at(-1)).toEqual({});
    expect(aws.calls()).toEqual({ "route53:GetChange": 1 });
  });

  it("never sends an attempt in the last second before the deadline; the call fails with the throttling", async () => {
    const { aws, at } = door(60);
    script = () => ec2Throttle();

    const error = await aws
      .call("ec2", "pool web", (sdk) => new sdk.DescribeAddressesCommand({}))
      .catch((e: unknown) => e);
    aws.destroy();

    expect(error).toBeInstanceOf(AwsCallError);
    expect((error as AwsCallError).code).toBe("RequestLimitExceeded");
    expect(Math.max(...arrivals.map((a) => a.at))).toBe(at - LAST_ATTEMPT_MS);
    expect(arrivals.every((a) => a.at <= at - LAST_ATTEMPT_MS)).toBe(true);
    // 0.5, 1, 2, 4, 8, then 10 s waits: many more than 8 attempts in 59 s.
    expect(arrivals.length).toBeGreaterThan(8);
  });

  it("does not retry what waiting cannot fix", async () => {
    const { aws } = door(300);
    script = () =>
      awsError("route53", 400, "InvalidChangeBatch", "[Tried to create resource record set but it already exists]");

    await expect(getChange(aws)).rejects.toThrow(/InvalidChangeBatch/);
    aws.destroy();
    expect(arrivals).toHaveLength(1);
  });

  it("retries 5xx and reset connections as transient, with 100 ms-based waits", async () => {
    const { aws } = door(300);
    const answers = [
      awsError("route53", 503, "ServiceUnavailable", "try again"),
      awsError("route53", 500, "InternalError", "oops"),
      "reset" as const,
    ];
    script = (_, n) => answers[n - 1] ?? insync;

    await getChange(aws);
    aws.destroy();
    expect(arrivals).toHaveLength(4);
    expect(clock.sleeps).toEqual([50, 100, 200]);
  });

  it("shares one budget per AWS bucket across concurrent calls: Route 53 one, EC2 one per action", async () => {
    const { aws } = door(300);
    script = (path) => (path.includes("change") ? insync : noAddresses);
    const describe = () => aws.call("ec2", "pool", (sdk) => new sdk.DescribeAddressesCommand({}));

    await Promise.all([getChange(aws), getChange(aws), describe(), describe()]);
    aws.destroy();

    expect(limiters.map((l) => l.sends).sort()).toEqual([2, 2]);
    expect(aws.calls()).toEqual({ "route53:GetChange": 2, "ec2:DescribeAddresses": 2 });
  });
});
