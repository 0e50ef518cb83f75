// What every doctor check returns (one line: ok / warn / fail, the cause, the fix), and the bound each one runs in.
import { setMaxListeners } from "node:events";
import type { Clock } from "../core/clock";
import { describeCause } from "../core/errors";
import type { Deadline } from "../core/retry";

export type Status = "ok" | "warn" | "fail";

export interface CheckResult {
  /** What was checked: "imds", "credentials", "permission ec2:AssociateAddress", "dns web.example.internal"... */
  name: string;
  status: Status;
  /** What holds, or what is wrong and why. */
  cause: string;
  /** What to do about it; empty when the check is ok. */
  fix: string;
}

export const ok = (name: string, cause: string): CheckResult => ({ name, status: "ok", cause, fix: "" });
export const warn = (name: string, cause: string, fix: string): CheckResult => ({ name, status: "warn", cause, fix });
export const fail = (name: string, cause: string, fix: string): CheckResult => ({ name, status: "fail", cause, fix });

/** The line of a check that could not run because another one failed. */
export const notChecked = (name: string, because: string): CheckResult =>
  warn(name, `not checked: ${because}`, "fix that first, then run doctor again");

/** A deadline `ms` from now, never past the command's own, and aborted with it. */
export function checkDeadline(clock: Clock, parent: Deadline, ms: number): { deadline: Deadline; end: () => void } {
  const controller = new AbortController();
  setMaxListeners(1000, controller.signal);
  const cancel = new AbortController();
  const at = Math.min(parent.at, clock.now() + ms);
  const stop = (): void => controller.abort(new Error("the check ran out of time"));
  clock.sleep(Math.max(0, at - clock.now()), cancel.signal).then(stop, () => undefined);
  if (parent.signal.aborted) stop();
  else parent.signal.addEventListener("abort", stop, { once: true });
  return {
    deadline: { at, signal: controller.signal },
    end: () => {
      cancel.abort();
      parent.signal.removeEventListener("abort", stop);
    },
  };
}

/** The share of a check's time kept back, so that a check can report its own failure at its deadline. */
const GRACE = 0.1;

/**
 * Runs one check within its own time (at most `ms`, never past the command's deadline). The check's deadline comes a
 * little earlier, so that a check which gives up at it (an IMDS read retrying to the end) still says why; a check
 * still running at the end is a fail that says so, and an error the check did not expect is a fail that names it.
 * Never throws.
 */
export async function bounded(
  name: string,
  clock: Clock,
  parent: Deadline,
  ms: number,
  check: (deadline: Deadline) => Promise<CheckResult | CheckResult[]>,
): Promise<CheckResult[]> {
  const limit = Math.max(0, Math.min(parent.at - clock.now(), ms));
  const outer = checkDeadline(clock, parent, limit);
  const inner = checkDeadline(clock, outer.deadline, limit * (1 - GRACE));
  const outOfTime = new Promise<CheckResult[]>((resolve) => {
    const give = (): void =>
      resolve([
        fail(
          name,
          `did not finish within ${(limit / 1000).toFixed(limit < 10_000 ? 1 : 0)} s`,
          "run doctor again with a longer --deadline; --log-level debug shows what it waited for",
        ),
      ]);
    if (outer.deadline.signal.aborted) give();
    else outer.deadline.signal.addEventListener("abort", give, { once: true });
  });
  const run = check(inner.deadline).then(
    (r) => (Array.isArray(r) ? r : [r]),
    (error: unknown) => [fail(name, describeCause(error), "see the cause; --log-level debug shows more")],
  );
  try {
    return await Promise.race([run, outOfTime]);
  } finally {
    inner.end();
    outer.end();
  }
}

/** Text: one line per check, the fix on the same line. JSON: the counts and every check. */
export function formatChecks(results: CheckResult[], json: boolean): string {
  const count = (s: Status): number => results.filter((r) => r.status === s).length;
  if (json) {
    return (
      JSON.stringify({ ok: count("ok"), warn: count("warn"), fail: count("fail"), checks: results }, null, 2) + "\n"
    );
  }
  const lines = results.map((r) => `${r.status.padEnd(4)}  ${r.name}: ${r.cause}${r.fix ? ` — fix: ${r.fix}` : ""}`);
  lines.push(`${count("ok")} ok, ${count("warn")} warn, ${count("fail")} fail`);
  return lines.join("\n") + "\n";
}
