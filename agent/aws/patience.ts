// How bootlace's AWS calls behave when a fleet boots at once and AWS throttles the account: every throttled or
// transient failure is retried with full-jitter backoff for as long as the run's deadline allows, and each of AWS's
// throttling buckets gets one client-side budget that slows down on throttling and recovers, shared by every action
// of the run.
//
// Why not the SDK's strategies as they are: StandardRetryStrategy and AdaptiveRetryStrategy stop after maxAttempts
// (with 8, agents of a fleet of 200 gave up after 71–104 s of a 300 s deadline), and share a retry quota (500 tokens, 5
// per throttling retry) that a long storm empties, after which nothing is retried at all. And the adaptive strategy's
// rate limiter belongs to the strategy, which never learns which operation it is retrying (its token scope is the
// partition), so it can be one per client at best, where AWS's buckets are per operation (EC2), per account (Route 53)
// or per group of operations (ELBv2's Describe*). So: the SDK's retry middleware, error classification and Retry-After
// parsing stay; PatientRetryStrategy decides and waits; and the door attaches the SDK's own DefaultRateLimiter (its
// CUBIC client-side bucket) for the call's AWS bucket to each command.
import type { RateLimiter } from "@smithy/util-retry";
import type { FinalizeRequestMiddleware, RetryErrorInfo, RetryStrategyV2, RetryToken } from "@smithy/types";
import type { Clock } from "../core/clock";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";
import type { ServiceName } from "./clients";

/** First backoff ceiling for throttling (the SDK's since 2026) and for transient errors (5xx, resets, timeouts). */
export const THROTTLING_BASE_MS = 1000;
export const TRANSIENT_BASE_MS = 100;
/** The SDK's ceiling for one wait. */
export const MAX_DELAY_MS = 20_000;
/** A retry is sent only if it starts this long before the deadline: time for the attempt itself. */
export const LAST_ATTEMPT_MS = 1000;

class Token implements RetryToken {
  constructor(private readonly count: number) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    // The strategy has already waited.
    return 0;
  }
}

/**
 * Full jitter: uniform in [0, min(cap, base × 2^retries)). A Retry-After hint is honoured as the SDK honours it: at
 * least the hint, at most 5 s more than the backoff.
 */
export function retryDelay(retries: number, info: RetryErrorInfo, now: number, random: () => number): number {
  const base = info.errorType === "THROTTLING" ? THROTTLING_BASE_MS : TRANSIENT_BASE_MS;
  const backoff = Math.floor(random() * Math.min(MAX_DELAY_MS, base * 2 ** retries));
  if (!(info.retryAfterHint instanceof Date)) return backoff;
  return Math.max(backoff, Math.min(info.retryAfterHint.getTime() - now, backoff + 5000));
}

/**
 * Retries throttling and transient errors (as the SDK classifies them) with no limit on attempts, only the run's
 * deadline: a retry that could not start LAST_ATTEMPT_MS before it is not made, and the last wait is shortened to fit.
 * Waits go through the injected clock and end when the deadline's signal aborts.
 */
export class PatientRetryStrategy implements RetryStrategyV2 {
  readonly mode = "adaptive";

  constructor(
    private readonly deadline: Deadline,
    private readonly clock: Clock,
    private readonly random: () => number = Math.random,
  ) {}

  acquireInitialRetryToken(): Promise<RetryToken> {
    return Promise.resolve(new Token(0));
  }

  async refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    if (info.errorType !== "THROTTLING" && info.errorType !== "TRANSIENT") throw new Error("not retryable");
    const now = this.clock.now();
    const left = this.deadline.at - LAST_ATTEMPT_MS - now;
    if (left <= 0) throw new Error("no retry: the run's deadline is too close");
    const delay = Math.min(retryDelay(token.getRetryCount(), info, now, this.random), left);
    await this.clock.sleep(delay, this.deadline.signal);
    return new Token(token.getRetryCount() + 1);
  }

  recordSuccess(): void {
    // Nothing to refund: there is no retry quota.
  }
}

/**
 * The AWS throttling bucket a call draws from: Route 53 has one per account that every call shares (its per-operation
 * buckets are the same size, so the account's runs out first); EC2 one per action; ELBv2 one for its Describe* calls;
 * STS and Auto Scaling, like EC2, one per operation.
 */
export function bucketOf(service: ServiceName, operation: string): string {
  if (service === "route53") return "route53";
  if (service === "elbv2" && /^Describe/.test(operation)) return "elbv2:Describe*";
  return `${service}:${operation}`;
}

export interface AttemptCounts {
  /** Attempts sent, by "service:Operation" (a call's first attempt and its retries). */
  attempts: Record<string, number>;
  /** Attempts answered with a throttling error, by "service:Operation". */
  throttled: Record<string, number>;
}

/** The SDK's throttling codes (reference, section 5), for counting and logging; the SDK itself decides retries. */
const THROTTLING = new Set([
  "BandwidthLimitExceeded",
  "EC2ThrottledException",
  "LimitExceededException",
  "PriorRequestNotComplete",
  "ProvisionedThroughputExceededException",
  "RequestLimitExceeded",
  "RequestThrottled",
  "RequestThrottledException",
  "SlowDown",
  "ThrottledException",
  "Throttling",
  "ThrottlingException",
  "TooManyRequestsException",
  "TransactionInProgressException",
]);

/**
 * One client-side budget per AWS bucket, shared by every call of the run: `limiter` makes one, in the agent the SDK's
 * DefaultRateLimiter, which sends freely until the first throttle, then paces to a rate that drops on each throttle
 * and grows back on success.
 */
export class Pacing {
  private readonly limiters = new Map<string, RateLimiter>();
  private readonly counts: AttemptCounts = { attempts: {}, throttled: {} };

  constructor(
    private readonly log: Logger,
    private readonly signal: AbortSignal,
    private readonly limiter: () => RateLimiter,
  ) {}

  /** What every call's attempts came to so far. */
  attempts(): AttemptCounts {
    return { attempts: { ...this.counts.attempts }, throttled: { ...this.counts.throttled } };
  }

  /** Adds pacing to one command: each attempt (the first and every retry) waits for its bucket's budget. */
  attach(command: object, service: ServiceName, operation: string, resource: string): void {
    const bucket = bucketOf(service, operation);
    let limiter = this.limiters.get(bucket);
    if (!limiter) this.limiters.set(bucket, (limiter = this.limiter()));
    const key = `${service}:${operation}`;
    let throttles = 0;
    const paced: FinalizeRequestMiddleware<object, object> = (next) => async (args) => {
      await abortable(limiter.getSendToken(), this.signal);
      this.counts.attempts[key] = (this.counts.attempts[key] ?? 0) + 1;
      try {
        const out = await next(args);
        limiter.updateClientSendingRate({});
        return out;
      } catch (error) {
        limiter.updateClientSendingRate({ error });
        const name = (error as { name?: unknown }).name;
        if (typeof name === "string" && THROTTLING.has(name)) {
          throttles += 1;
          this.counts.throttled[key] = (this.counts.throttled[key] ?? 0) + 1;
          // Once a call has been refused a few times, say so: a slow boot in a fleet is then explained in the log.
          if (throttles === 3 || throttles % 10 === 0) {
            this.log.info(`${operation} ${resource}: throttled by AWS ${throttles} times; retrying until the deadline`);
          } else {
            this.log.debug(`${operation} ${resource}: ${name}`, { bucket, throttles });
          }
        }
        throw error;
      }
    };
    // Inside the retry middleware (which is "high" in the same step): once per attempt, not once per call.
    (command as { middlewareStack: { add(m: unknown, o: unknown): void } }).middlewareStack.add(paced, {
      step: "finalizeRequest",
      priority: "low",
      name: "bootlacePacing",
    });
  }
}

/**
 * Waits for p, or fails as the SDK fails an aborted call (an AbortError) when the signal aborts first: the limiter's
 * own waits cannot be cancelled.
 */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  const aborted = (): Error =>
    Object.assign(new Error("Request aborted", { cause: signal.reason }), { name: "AbortError" });
  if (signal.aborted) return Promise.reject(aborted());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(aborted());
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}
