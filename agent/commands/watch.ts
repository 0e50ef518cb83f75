// watch: keeps peers and files in step while the instance runs. Every watch.interval (jittered, so a fleet does not
// poll in step) it re-discovers the peers and rewrites only the files whose content changed, running each on_change
// once per pass. A "reload" (SIGHUP) reads the configuration and the instance's metadata again; "stop" (SIGTERM,
// SIGINT) ends it after the pass under way. Each pass has the --deadline of its own and takes the run lock, so a
// `bootlace run` and a pass never interleave.
import { setMaxListeners } from "node:events";
import { actions as allActions } from "../actions";
import { createAwsClients } from "../aws/clients";
import { version } from "../cli";
import type { Clock } from "../core/clock";
import type { LoadedConfig } from "../config/load";
import type { Config } from "../config/schema";
import { ConfigError, ConfigErrors, describeCause } from "../core/errors";
import type { InstanceFacts } from "../instance/facts";
import { ImdsClient, imdsEndpointFrom } from "../instance/imds";
import { readInstanceFacts, readUserData } from "../instance/read";
import { acquireLock } from "../root/lock";
import type { Logger } from "../core/log";
import { paths, underRoot } from "../root/paths";
import type { Deadline } from "../core/retry";
import { applyAll, planAll } from "../wiring/runner";
import { readState, writeState } from "../root/state";
import type { Control, Session } from "./session";
import { configFrom, exitCodes, readUserDataFile } from "./session";
import { nextState } from "./wire";

interface Watched {
  instance: InstanceFacts;
  loaded: LoadedConfig;
}

/** A deadline for one step (the start, a reload, a pass), cancelled when the step ends. */
function stepDeadline(clock: Clock, seconds: number): { deadline: Deadline; end: () => void } {
  const controller = new AbortController();
  const cancel = new AbortController();
  setMaxListeners(1000, controller.signal);
  clock.sleep(seconds * 1000, cancel.signal).then(
    () => controller.abort(new Error(`the deadline of ${seconds} s passed`)),
    () => undefined,
  );
  return { deadline: { at: clock.now() + seconds * 1000, signal: controller.signal }, end: () => cancel.abort() };
}

/** The instance's metadata and the configuration, read as `run` reads them. */
async function readWatched(s: Session, deadline: Deadline): Promise<Watched> {
  const imds = new ImdsClient({
    endpoint: imdsEndpointFrom(s.o.env),
    clock: s.clock,
    deadline,
    log: s.log.child({ component: "imds" }),
  });
  try {
    const fromFile = await readUserDataFile(s);
    const [instance, userData] = await Promise.all([
      readInstanceFacts(imds),
      fromFile !== undefined ? Promise.resolve(fromFile) : readUserData(imds),
    ]);
    return { instance, loaded: await configFrom(s, userData) };
  } finally {
    await imds.close();
  }
}

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

async function pass(s: Session, w: Watched, n: number): Promise<void> {
  const { deadline, end } = stepDeadline(s.clock, s.args.deadline);
  const aws = createAwsClients({
    region: w.instance.region,
    env: s.o.env,
    clock: s.clock,
    deadline,
    log: s.log.child({ component: "aws" }),
    userAgent: `bootlace/${version}`,
    ...(s.o.credentials && { credentials: s.o.credentials }),
  });
  const statePath = underRoot(s.args.root, paths.state);
  const started = s.clock.now();
  try {
    const lock = await acquireLock(underRoot(s.args.root, paths.lock), s.clock, deadline);
    try {
      const previous = await readState(statePath, w.instance.id);
      const runner = {
        actions: (s.o.actions ?? allActions).filter((a) => a.name === "peers" || a.name === "files"),
        context: {
          config: watchConfig(w.loaded.config),
          instance: w.instance,
          aws,
          clock: s.clock,
          deadline,
          log: quiet(s.log),
          root: s.args.root,
        },
        previous: previous?.saved ?? {},
      };
      const results = await applyAll(runner, await planAll(runner));
      const changes = results.flatMap((r) => r.changes);
      const failed = results.filter((r) => r.status !== "ok");
      const code = failed.length > 0 ? exitCodes.failed : exitCodes.ok;
      // state.json records passes that did something, and the first pass after a change of outcome.
      if (changes.length > 0 || code !== (previous?.watch?.exit_code ?? exitCodes.ok)) {
        await writeState(statePath, nextState(previous, w.instance, "watch", results, started, s.clock.now(), code));
      }
      const what = changes.map((c) => `${c.kind} ${c.target}`).join(", ");
      if (changes.length > 0)
        s.log.info(`pass ${n}: ${changes.length} change${changes.length === 1 ? "" : "s"}: ${what}`);
      else s.log.debug(`pass ${n}: no changes`);
      for (const r of failed) s.log.error(`pass ${n}: ${r.name} ${r.status}: ${r.error ?? ""}`);
    } finally {
      await lock.release();
    }
  } catch (error) {
    // A configuration problem found while planning (a template file removed since...) or anything else: said, and
    // the next pass tries again.
    const errors = error instanceof ConfigErrors ? error.errors : error instanceof ConfigError ? [error] : [error];
    for (const e of errors) s.log.error(`pass ${n} failed: ${describeCause(e)}`);
  } finally {
    end();
    aws.destroy();
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
    let watched = await readWatched(s, s.deadline);
    const describe = (w: Watched) => {
      const c = w.loaded.config;
      const sets = Object.keys(c.peers ?? {});
      return `every ${c.watch?.interval ?? 60} s: peers ${sets.join(", ") || "none"}, ${c.files?.length ?? 0} files`;
    };
    s.log.info(`watch on ${watched.instance.id} (${watched.instance.privateIpv4}): ${describe(watched)}`);
    for (let n = 1; !control.stop.aborted; n++) {
      if (reloadAsked) {
        reloadAsked = false;
        const step = stepDeadline(s.clock, s.args.deadline);
        try {
          watched = await readWatched(s, step.deadline);
          s.log.info(`configuration read again: ${describe(watched)}`);
        } catch (error) {
          const errors = error instanceof ConfigErrors ? error.errors : [error];
          for (const e of errors) s.log.error(`reload: ${describeCause(e)}`);
          s.log.error("reload refused: watching on with the configuration read before");
        } finally {
          step.end();
        }
      }
      await pass(s, watched, n);
      if (control.stop.aborted || reloadAsked) continue;
      wake = new AbortController();
      await s.clock.sleep(nextDelayMs(watched.loaded.config.watch?.interval ?? 60), wake.signal).catch(() => undefined);
    }
    s.log.info("watch stopped");
    return exitCodes.ok;
  } finally {
    control.reload.removeEventListener("reload", onReload);
    control.stop.removeEventListener("abort", onStop);
    own?.dispose();
  }
}
