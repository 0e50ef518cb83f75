// watch: keeps peers and files in step while the instance runs, and follows its lifecycle. Every watch.interval
// (jittered, so a fleet does not poll in step) it re-discovers the peers and rewrites only the files whose content
// changed, running each on_change once per pass; every watch.notice_interval it reads the Auto Scaling lifecycle state
// and the spot notices and reacts (lifecycle/watcher.ts: the stop path when leaving, the wiring at InService). A
// "reload" (SIGHUP) reads the configuration and the instance's metadata again; "stop" (SIGTERM, SIGINT) ends it after
// the pass under way. Each pass has the --deadline of its own and takes the run lock, so a `bootlace run` and a pass
// never interleave.
import type { Config } from "../config/schema";
import { LifecycleWatcher } from "../lifecycle/watcher";
import { configErrorsIn, describeCause } from "../core/errors";
import type { Logger } from "../core/log";
import { deadlineAfter } from "../core/retry";
import type { World } from "../wiring/procedure";
import { readWorld, withWiring } from "../wiring/procedure";
import { nextState } from "../wiring/report";
import { applyAll, planAll } from "../wiring/runner";
import type { Control, Session } from "./session";
import { exitCodes } from "./session";

/** watch never waits for a peer set's min: a short set leaves its files alone until a later pass finds enough. */
export function watchConfig(config: Config): Config {
  if (!config.peers) return config;
  const peers = Object.fromEntries(Object.entries(config.peers).map(([name, set]) => [name, { ...set, timeout: 0 }]));
  return { ...config, peers };
}

/** The actions' own summaries at debug: a pass that changes nothing should not add lines to the journal. */
function quiet(log: Logger): Logger {
  return { ...log, info: (msg, fields) => log.debug(msg, fields), child: (fields) => quiet(log.child(fields)) };
}

/** Between passes: interval ±20 %. */
export function nextDelayMs(intervalSeconds: number, random: () => number = () => Math.random()): number {
  return Math.round(intervalSeconds * 1000 * (0.8 + 0.4 * random()));
}

/** The errors a failed step reports: each configuration error of its own, or the one error. */
function reasons(error: unknown): unknown[] {
  const config = configErrorsIn(error);
  return config.length > 0 ? config : [error];
}

/** One pass: peers and files only, with a deadline of its own, through the same procedure as `run`. */
async function pass(s: Session, world: World, n: number): Promise<void> {
  const step = deadlineAfter(s.clock, s.args.deadline);
  const started = s.clock.now();
  try {
    await withWiring(
      s,
      world,
      {
        deadline: step.deadline,
        lock: true,
        only: ["peers", "files"],
        config: watchConfig(world.loaded.config),
        log: quiet(s.log),
      },
      async (w) => {
        const results = await applyAll(w.runner, await planAll(w.runner));
        const changes = results.flatMap((r) => r.changes);
        const failed = results.filter((r) => r.status !== "ok");
        const code = failed.length > 0 ? exitCodes.failed : exitCodes.ok;
        // state.json records passes that did something, and the first pass after a change of outcome.
        if (changes.length > 0 || code !== (w.previous?.watch?.exit_code ?? exitCodes.ok)) {
          await w.save(nextState(w.previous, world.instance, "watch", results, started, s.clock.now(), code));
        }
        const what = changes.map((c) => `${c.kind} ${c.target}`).join(", ");
        if (changes.length > 0)
          s.log.info(`pass ${n}: ${changes.length} change${changes.length === 1 ? "" : "s"}: ${what}`);
        else s.log.debug(`pass ${n}: no changes`);
        for (const r of failed) s.log.error(`pass ${n}: ${r.name} ${r.status}: ${describeCause(r.error)}`);
      },
    );
  } catch (error) {
    // A configuration problem found while planning (a template file removed since...) or anything else: said, and
    // the next pass tries again.
    for (const e of reasons(error)) s.log.error(`pass ${n} failed: ${describeCause(e)}`);
  } finally {
    step.end();
  }
}

/** The CLI's control: SIGTERM and SIGINT stop, SIGHUP reloads. */
function processControl(): { control: Control; dispose(): void } {
  const stop = new AbortController();
  const reload = new EventTarget();
  const onStop = (): void => stop.abort();
  const onHangUp = (): void => {
    reload.dispatchEvent(new Event("reload"));
  };
  process.on("SIGTERM", onStop).on("SIGINT", onStop).on("SIGHUP", onHangUp);
  return {
    control: { stop: stop.signal, reload },
    dispose: () => {
      process.off("SIGTERM", onStop).off("SIGINT", onStop).off("SIGHUP", onHangUp);
    },
  };
}

export async function watch(s: Session): Promise<number> {
  const own = s.o.control ? undefined : processControl();
  const control = s.o.control ?? own!.control;
  let reloadAsked = false;
  let wake = new AbortController();
  const onReload = (): void => {
    reloadAsked = true;
    wake.abort();
  };
  const onStop = (): void => wake.abort();
  control.reload.addEventListener("reload", onReload);
  control.stop.addEventListener("abort", onStop);
  try {
    // The first reading decides: bad configuration exits 2, no metadata exits 3, as for run.
    let watched = await readWorld(s, s.deadline);
    const describe = (w: World) => {
      const c = w.loaded.config;
      const sets = Object.keys(c.peers ?? {});
      return `every ${c.watch?.interval ?? 60} s: peers ${sets.join(", ") || "none"}, ${c.files?.length ?? 0} files`;
    };
    const lifecycle = await LifecycleWatcher.start(s, watched);
    s.log.info(
      `watch on ${watched.instance.id} (${watched.instance.privateIpv4}): ${describe(watched)}; ${lifecycle.describe()}`,
    );
    // Two schedules in one loop, so a pass and a lifecycle reading never run at once: the peer passes every
    // watch.interval, the lifecycle readings (spot notices, the lifecycle state) every watch.notice_interval.
    let nextPass = s.clock.now();
    let nextReading = s.clock.now();
    for (let n = 1; !control.stop.aborted;) {
      if (reloadAsked) {
        reloadAsked = false;
        const step = deadlineAfter(s.clock, s.args.deadline);
        try {
          watched = await readWorld(s, step.deadline);
          lifecycle.update(watched);
          s.log.info(`configuration read again: ${describe(watched)}`);
          nextPass = s.clock.now();
        } catch (error) {
          for (const e of reasons(error)) s.log.error(`reload: ${describeCause(e)}`);
          s.log.error("reload refused: watching on with the configuration read before");
        } finally {
          step.end();
        }
      }
      const config = watched.loaded.config;
      if (lifecycle.active && s.clock.now() >= nextReading) {
        await lifecycle.tick();
        nextReading = s.clock.now() + nextDelayMs(config.watch?.notice_interval ?? 5);
      }
      if (s.clock.now() >= nextPass && !control.stop.aborted && !reloadAsked) {
        // Parked in a warm pool (wired at InService) or gone (the stop path ran): no peers to keep in step.
        if (lifecycle.idle) s.log.debug("pass skipped: the instance is not in service");
        else await pass(s, watched, n++);
        nextPass = s.clock.now() + nextDelayMs(config.watch?.interval ?? 60);
      }
      if (control.stop.aborted || reloadAsked) continue;
      wake = new AbortController();
      const next = lifecycle.active ? Math.min(nextPass, nextReading) : nextPass;
      await s.clock.sleep(Math.max(0, next - s.clock.now()), wake.signal).catch(() => undefined);
    }
    s.log.info("watch stopped");
    return exitCodes.ok;
  } finally {
    control.reload.removeEventListener("reload", onReload);
    control.stop.removeEventListener("abort", onStop);
    own?.dispose();
  }
}
