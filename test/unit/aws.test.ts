import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from "@smithy/types";
import { DeadlineRetryStrategy, endpointFor, regionFrom } from "../../agent/aws/clients";
import { fakeClock } from "../support/fake-clock";

describe("endpoints and region", () => {
  it("takes the service's own variable first, then AWS_ENDPOINT_URL, as the SDK does", () => {
    const env = { AWS_ENDPOINT_URL: "http://127.0.0.1:1", AWS_ENDPOINT_URL_ROUTE_53: "http://127.0.0.1:2" };
    expect(endpointFor("route53", env)).toBe("http://127.0.0.1:2");
    expect(endpointFor("ec2", env)).toBe("http://127.0.0.1:1");
    expect(endpointFor("elbv2", { AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: "http://127.0.0.1:3" })).toBe(
      "http://127.0.0.1:3",
    );
    expect(endpointFor("ec2", {})).toBeUndefined();
  });

  it("ignores them all when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true", () => {
    expect(
      endpointFor("ec2", { AWS_ENDPOINT_URL: "http://127.0.0.1:1", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }),
    ).toBeUndefined();
  });

  it("uses the region from IMDS unless AWS_REGION overrides it", () => {
    expect(regionFrom("eu-west-1", {})).toBe("eu-west-1");
    expect(regionFrom("eu-west-1", { AWS_REGION: "us-east-2" })).toBe("us-east-2");
  });
});

describe("DeadlineRetryStrategy", () => {
  const token = (delay: number): RetryToken => ({ getRetryCount: () => 1, getRetryDelay: () => delay });
  const inner = (delay: number): RetryStrategyV2 => ({
    acquireInitialRetryToken: () => Promise.resolve(token(0)),
    refreshRetryTokenForRetry: () => Promise.resolve(token(delay)),
    recordSuccess: () => undefined,
  });
  const info = { errorType: "THROTTLING" } as RetryErrorInfo;

  it("passes a retry through when it would start before the deadline", async () => {
    const clock = fakeClock();
    const strategy = new DeadlineRetryStrategy(
      inner(1000),
      { at: clock.now() + 5000, signal: new AbortController().signal },
      clock,
    );
    expect((await strategy.refreshRetryTokenForRetry(token(0), info)).getRetryDelay()).toBe(1000);
  });

  it("declines a retry that would start after the deadline, so the call fails in time", async () => {
    const clock = fakeClock();
    const strategy = new DeadlineRetryStrategy(
      inner(20_000),
      { at: clock.now() + 5000, signal: new AbortController().signal },
      clock,
    );
    await expect(strategy.refreshRetryTokenForRetry(token(0), info)).rejects.toThrow(/deadline/);
  });
});
