// Plans every enabled action, then applies them: independent ones concurrently, each after the ones it depends on;
// a failed action is recorded and the others carry on.
import { isDeepStrictEqual } from "node:util";
import type { Action, ActionContext, ActionName, Change, Outcome, Plan, Upstream } from "../actions/types";
import type { Logger } from "../core/log";
import {
  ActionFailuresError,
  ConfigErrors,
  configErrorsIn,
  DeadlineError,
  DependencyFailedError,
  describeCause,
} from "../core/errors";

export interface ActionResult {
  name: ActionName;
  status: "ok" | "failed" | "skipped";
  changes: Change[];
  /** Why it failed or was skipped: the error itself (its code and message are made at the edge, in the report). */
  error?: Error;
  durationMs: number;
  /** For state.json: what stop() needs later. */
  state?: unknown;
  /** The action's one line on what holds now (Outcome.summary). */
  summary?: string;
}

export type BaseContext = Omit<ActionContext, "upstream" | "previous">;

export interface RunnerOptions {
  actions: readonly Action[];
  context: BaseContext;
  /** Per action, what the previous run saved. */
  previous: Partial<Record<ActionName, unknown>>;
}

/** The enabled actions, each with its enabled dependencies (the explicit list fixes the order). */
function enabledActions(o: RunnerOptions): { action: Action; deps: ActionName[] }[] {
  const enabled = o.actions.filter((a) => a.enabled(o.context.config));
  const names = new Set(enabled.map((a) => a.name));
  return enabled.map((action) => ({
    action,
    deps: action.dependsOn(o.context.config).filter((d) => names.has(d)),
  }));
}

function contextFor(o: RunnerOptions, name: ActionName, upstream: Upstream): ActionContext {
  return { ...o.context, log: o.context.log.child({ action: name }), upstream, previous: o.previous[name] };
}

/**
 * Runs fn for each action once its dependencies' promises settle, all concurrently otherwise. Explicit list order
 * guarantees dependencies come first (checked), so this never deadlocks.
 */
function schedule<T>(
  list: { action: Action; deps: ActionName[] }[],
  fn: (action: Action, deps: Map<ActionName, T>) => Promise<T>,
): Promise<Map<ActionName, T>> {
  const started = new Map<ActionName, Promise<T>>();
  for (const { action, deps } of list) {
    const depPromises = deps.map((d) => {
      const p = started.get(d);
      if (!p) throw new Error(`action ${action.name} depends on ${d}, which comes later in the list`);
      return p.then((value) => [d, value] as const);
    });
    started.set(
      action.name,
      Promise.all(depPromises).then((entries) => fn(action, new Map(entries))),
    );
  }
  return Promise.all([...started].map(async ([name, p]) => [name, await p] as const)).then((e) => new Map(e));
}

/** After the deadline, how long an action still has to end by itself (and report what it did) before it is given up. */
export const SETTLE_MS = 1000;

/**
 * The action's work, or, when it has not ended SETTLE_MS after the deadline (a promise that never settles, a call that
 * ignores the signal), a DeadlineError: so the run still reports and saves state.json, saying which actions did not
 * finish, before the CLI's watchdog ends the process.
 */
function byDeadline<T>(work: Promise<T>, signal: AbortSignal, name: ActionName): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const giveUp = (): void => {
      timer = setTimeout(() => reject(new DeadlineError(`${name} did not finish by the deadline`)), SETTLE_MS);
    };
    if (signal.aborted) giveUp();
    else signal.addEventListener("abort", giveUp, { once: true });
    const done = (): void => {
      signal.removeEventListener("abort", giveUp);
      clearTimeout(timer);
    };
    work.then(
      (value) => {
        done();
        resolve(value);
      },
      (error: unknown) => {
        done();
        // The action's own rejection, passed on as it is (runner turns non-Errors into Errors in its results).
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        reject(error);
      },
    );
  });
}

export interface Planned {
  name: ActionName;
  plan?: Plan;
  /** What the plan was made with: the dependencies' expected outputs. */
  upstream: Upstream;
  error?: unknown;
  durationMs: number;
}

/**
 * Phase one: every action reads the world and says what it would change. Dependent actions plan with what their
 * dependencies expect to produce. Configuration errors found here (a zone that does not exist...) are thrown together
 * before anything has changed.
 */
export async function planAll(o: RunnerOptions): Promise<Map<ActionName, Planned>> {
  const list = enabledActions(o);
  const planned = await schedule<Planned>(list, async (action, deps) => {
    const upstream: Upstream = {};
    for (const [name, p] of deps) if (p.plan) upstream[name] = p.plan.output;
    const started = o.context.clock.now();
    try {
      const plan = await byDeadline(
        action.plan(contextFor(o, action.name, upstream)),
        o.context.deadline.signal,
        action.name,
      );
      return { name: action.name, plan, upstream, durationMs: o.context.clock.now() - started };
    } catch (error) {
      return { name: action.name, error, upstream, durationMs: o.context.clock.now() - started };
    }
  });
  const configErrors = [...planned.values()].flatMap((p) => configErrorsIn(p.error));
  if (configErrors.length > 0) throw new ConfigErrors(configErrors);
  return planned;
}

/** What `plan` reports: each action's planned changes, or why it could not plan. */
export function planResults(planned: Map<ActionName, Planned>, log: Logger): ActionResult[] {
  return [...planned.values()].map((p) => {
    if (p.error === undefined)
      return { name: p.name, status: "ok", changes: p.plan?.changes ?? [], durationMs: p.durationMs };
    log.child({ action: p.name }).error(`plan failed: ${describeCause(p.error)}`);
    return { name: p.name, status: "failed", changes: [], durationMs: p.durationMs, error: asError(p.error) };
  });
}

/** Errors as results keep them: anything thrown that is not an Error (a string...) becomes one. */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

interface Applied {
  result: ActionResult;
  output?: unknown;
}

/** Phase two: apply. An action whose dependency failed is skipped; one whose dependency did otherwise than planned plans again. */
export async function applyAll(o: RunnerOptions, planned: Map<ActionName, Planned>): Promise<ActionResult[]> {
  const list = enabledActions(o);
  const applied = await schedule<Applied>(list, async (action, deps) => {
    const first = planned.get(action.name);
    const log = o.context.log.child({ action: action.name });
    const failedDeps = [...deps].filter(([, d]) => d.result.status !== "ok").map(([n]) => n);
    if (failedDeps.length > 0) {
      const error = new DependencyFailedError(`not run: ${failedDeps.join(", ")} failed`);
      log.error(error.message);
      return { result: { name: action.name, status: "skipped", changes: [], error, durationMs: 0 } };
    }
    const upstream: Upstream = {};
    for (const [name, d] of deps) upstream[name] = d.output;
    const ctx = contextFor(o, action.name, upstream);
    const started = o.context.clock.now();
    const failed = (error: unknown): Applied => {
      const durationMs = o.context.clock.now() - started + (first?.durationMs ?? 0);
      log.error(`failed: ${describeCause(error)}`, { ms: durationMs });
      return { result: { name: action.name, status: "failed", changes: [], error: asError(error), durationMs } };
    };
    // A failed read with nothing upstream would fail the same way again: report it rather than repeat it.
    if (first?.error !== undefined && deps.size === 0) return failed(first.error);
    try {
      // Plan again only when a dependency produced something other than what the plan assumed (a pool address
      // chosen just now); when it did what was expected, the plan's reads are still the truth.
      const outcome = await byDeadline(
        (async () => {
          const reuse = first?.plan && isDeepStrictEqual(first.upstream, upstream);
          return action.apply(ctx, reuse ? first.plan! : await action.plan(ctx));
        })(),
        o.context.deadline.signal,
        action.name,
      );
      const durationMs = o.context.clock.now() - started + (first?.durationMs ?? 0);
      return { result: finish(action.name, outcome, durationMs, log), output: outcome.output };
    } catch (error) {
      return failed(error);
    }
  });
  return [...applied.values()].map((a) => a.result);
}

/** At shutdown: each action with something saved undoes what should not outlive the instance. */
export async function stopAll(o: RunnerOptions, saved: Partial<Record<ActionName, unknown>>): Promise<ActionResult[]> {
  const list = o.actions.filter((a) => a.stop && saved[a.name] !== undefined);
  return Promise.all(
    list.map(async (action): Promise<ActionResult> => {
      const ctx = contextFor(o, action.name, {});
      const started = o.context.clock.now();
      try {
        const outcome = await byDeadline(action.stop!(ctx, saved[action.name]), ctx.deadline.signal, action.name);
        return finish(action.name, outcome, o.context.clock.now() - started, ctx.log);
      } catch (error) {
        const durationMs = o.context.clock.now() - started;
        ctx.log.error(`stop failed: ${describeCause(error)}`, { ms: durationMs });
        return { name: action.name, status: "failed", changes: [], error: asError(error), durationMs };
      }
    }),
  );
}

/** An outcome with failures is a failed action that still made (and records) its other changes. */
function finish(name: ActionName, outcome: Outcome, durationMs: number, log: Logger): ActionResult {
  const fields = { changes: outcome.changes.length, ms: durationMs };
  const result: ActionResult = {
    name,
    status: "ok",
    changes: outcome.changes,
    durationMs,
    state: outcome.state,
    ...(outcome.summary !== undefined && { summary: outcome.summary }),
  };
  if (outcome.failures && outcome.failures.length > 0) {
    for (const failure of outcome.failures) log.error(failure);
    log.error(`failed: ${summary(outcome.changes.length, durationMs)}`, fields);
    return { ...result, status: "failed", error: new ActionFailuresError(outcome.failures) };
  }
  log.info(summary(outcome.changes.length, durationMs), fields);
  return result;
}

function summary(changes: number, ms: number): string {
  return `${changes === 0 ? "no changes" : `${changes} change${changes === 1 ? "" : "s"}`} in ${(ms / 1000).toFixed(1)} s`;
}
