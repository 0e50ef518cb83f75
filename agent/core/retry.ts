// Bounded, jittered retries and polling for what the AWS SDK does not retry itself: IMDS at boot, and waits
// (INSYNC, target health). Every wait ends at the run's deadline.
import { setMaxListeners } from "node:events";
import type { Clock } from "./clock";
import { DeadlineError } from "./errors";

export interface Deadline {
  /** Epoch milliseconds after which nothing more is attempted. */
  at: number;
  /** Aborted when the deadline passes (or the run is cancelled). */
  signal: AbortSignal;
}

/** A deadline `seconds` from now, and end() to cancel its timer once the step it bounds is over. */
export function deadlineAfter(clock: Clock, seconds: number): { deadline: Deadline; end: () => void } {
  const controller = new AbortController();
  const cancel = new AbortController();
  // Every concurrent wait (IMDS reads, AWS calls, polls) listens on this one signal: more than Node's default 10.
  setMaxListeners(1000, controller.signal);
  clock.sleep(seconds * 1000, cancel.signal).then(
    () => controller.abort(new Error(`the deadline of ${seconds} s passed`)),
    () => undefined,
  );
  return { deadline: { at: clock.now() + seconds * 1000, signal: controller.signal }, end: () => cancel.abort() };
}

export interface BackoffOptions {
  /** First delay in ms. */
  initialMs: number;
  /** Upper bound for one delay in ms. */
  maxMs: number;
  /** Growth per attempt. */
  factor?: number;
  /** Random source in [0, 1): injectable for tests. */
  random?: () => number;
}

/** Delay before attempt n+1 ("equal jitter": half fixed, half random, so waits never collapse to zero). */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * Math.pow(o.factor ?? 2, attempt));
  const random = o.random ?? Math.random;
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

export interface RetryOptions extends BackoffOptions {
  label: string;
  clock: Clock;
  deadline: Deadline;
  /** Return false for errors that must not be retried (they are thrown at once). */
  retryable: (error: unknown) => boolean;
  /** Called before each wait, e.g. to log why. */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void;
}

/** Calls fn until it succeeds, a non-retryable error occurs, or the deadline would pass during the next wait. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!o.retryable(error)) throw error;
      const delay = backoffDelay(attempt, o);
      if (o.clock.now() + delay >= o.deadline.at) {
        throw new DeadlineError(`${o.label}: gave up after ${attempt + 1} attempts at the deadline`, { cause: error });
      }
      o.onRetry?.(error, attempt + 1, delay);
      await o.clock.sleep(delay, o.deadline.signal);
    }
  }
}

export interface PollOptions extends BackoffOptions {
  label: string;
  clock: Clock;
  deadline: Deadline;
  /** Stop polling at this epoch ms even if the run's deadline is later (e.g. wait_healthy). */
  until?: number;
}

/**
 * Polls check() with growing, jittered intervals until it returns a value (done) or undefined past the time limit.
 * Returns { done: true, value } or { done: false } when time ran out; errors from check() propagate.
 */
export async function poll<T>(
  check: (attempt: number) => Promise<T | undefined>,
  o: PollOptions,
): Promise<{ done: true; value: T } | { done: false }> {
  const limit = Math.min(o.deadline.at, o.until ?? Infinity);
  for (let attempt = 0; ; attempt++) {
    const value = await check(attempt);
    if (value !== undefined) return { done: true, value };
    const delay = backoffDelay(attempt, o);
    const now = o.clock.now();
    if (now >= limit) return { done: false };
    await o.clock.sleep(Math.min(delay, limit - now), o.deadline.signal);
  }
}
