// The whole agent as a function: argv, environment, clock and output in; exit code out. The CLI is a thin shell
// around it, and tests run many agents at once in one process, each with its own endpoints and root folder.
import { setMaxListeners } from "node:events";
import { promises as fs } from "node:fs";
import { resolve } from "node:path";
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import { actions as allActions } from "./actions";
import type { Action } from "./actions/types";
import type { AwsClients, Env } from "./aws";
import { createAwsClients, sdkPackagesLoaded } from "./aws";
import type { GlobalArgs, Parsed } from "./cli";
import { parseCli, version } from "./cli";
import type { Clock } from "./clock";
import { systemClock } from "./clock";
import type { LoadedConfig } from "./config/load";
import { loadConfig, validateFile } from "./config/load";
import { ConfigError, ConfigErrors, MetadataUnavailableError, describeCause } from "./errors";
import type { InstanceFacts } from "./facts";
import { ImdsClient, imdsEndpointFrom } from "./imds";
import { readInstanceFacts, readUserData } from "./instance";
import { LockBusyError, acquireLock } from "./lock";
import type { Logger } from "./log";
import { createLogger } from "./log";
import { paths, underRoot } from "./paths";
import type { Deadline } from "./retry";
import type { ActionResult } from "./runner";
import { applyAll, planAll, stopAll } from "./runner";
import type { CommandRecord, StateFile } from "./state";
import { readState, writeState } from "./state";

export const exitCodes = { ok: 0, failed: 1, config: 2, metadata: 3 } as const;

export interface AgentOptions {
  argv: string[];
  env: Env;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  clock?: Clock;
  /** Injected AWS credentials; default: the SDK's default chain (on EC2, the instance profile from IMDS). */
  credentials?: AwsCredentialIdentityProvider;
  /** The actions to run (default: all); tests may hand in their own list. */
  actions?: readonly Action[];
  cwd?: string;
}

interface Session {
  o: AgentOptions;
  args: GlobalArgs;
  clock: Clock;
  log: Logger;
  deadline: Deadline;
}

/** Runs one bootlace command and returns its exit code; never throws, never exits the process. */
export async function runAgent(o: AgentOptions): Promise<number> {
  const parsed: Parsed = await parseCli(o.argv);
  if (parsed.kind === "output") {
    (parsed.exitCode === 0 ? o.stdout : o.stderr)(parsed.text);
    return parsed.exitCode;
  }
  const clock = o.clock ?? systemClock;
  const { args } = parsed;
  const log = createLogger({
    format: args.logFormat,
    level: args.logLevel,
    write: o.stderr,
    now: () => clock.now(),
  });
  const stopDeadline = new AbortController();
  const deadline = startDeadline(clock, args.deadline, stopDeadline.signal);
  const session: Session = { o, args, clock, log, deadline };
  try {
    switch (parsed.command) {
      case "run":
      case "plan":
      case "stop":
        return await wire(session, parsed.command);
      case "validate":
        return await validate(session, parsed.file);
      case "status":
        return await status(session);
      default:
        log.error(`\`bootlace ${parsed.command}\` is not available in bootlace ${version} yet`);
        return exitCodes.config;
    }
  } catch (error) {
    return reportFailure(log, error);
  } finally {
    stopDeadline.abort();
    const sdk = sdkPackagesLoaded();
    log.debug(`aws sdk loaded: ${sdk.length > 0 ? sdk.join(", ") : "none"}`);
  }
}

/** The run's deadline: an abort signal that fires after the given seconds (cancelled when the command ends). */
function startDeadline(clock: Clock, seconds: number, cancel: AbortSignal): Deadline {
  const controller = new AbortController();
  // Every concurrent wait (IMDS reads, AWS calls, polls) listens on this one signal: more than Node's default 10.
  setMaxListeners(1000, controller.signal);
  const at = clock.now() + seconds * 1000;
  clock.sleep(seconds * 1000, cancel).then(
    () => controller.abort(new Error(`the deadline of ${seconds} s passed`)),
    () => undefined,
  );
  return { at, signal: controller.signal };
}

function reportFailure(log: Logger, error: unknown): number {
  if (error instanceof ConfigErrors) {
    for (const e of error.errors) log.error(e.message);
    log.error("configuration refused: nothing was changed");
    return exitCodes.config;
  }
  if (error instanceof ConfigError) {
    log.error(error.message);
    log.error("configuration refused: nothing was changed");
    return exitCodes.config;
  }
  if (error instanceof MetadataUnavailableError) {
    log.error(error.message);
    return exitCodes.metadata;
  }
  if (error instanceof LockBusyError) {
    log.error(error.message);
    return exitCodes.failed;
  }
  log.error(describeCause(error));
  return exitCodes.failed;
}

function resolvePath(o: AgentOptions, file: string): string {
  return resolve(o.cwd ?? process.cwd(), file);
}

async function readUserDataFile(s: Session): Promise<Buffer | undefined> {
  if (s.args.userData === undefined) return undefined;
  const path = resolvePath(s.o, s.args.userData);
  try {
    return await fs.readFile(path);
  } catch (error) {
    throw new ConfigError(`cannot read the user-data file: ${describeCause(error)}`, { source: path });
  }
}

function configFrom(s: Session, userData: Buffer | undefined): Promise<LoadedConfig> {
  return loadConfig({
    root: s.args.root,
    ...(s.args.config !== undefined && { configFile: resolvePath(s.o, s.args.config) }),
    ...(userData !== undefined && { userData }),
    ...(s.args.profile !== undefined && { profile: s.args.profile }),
    sets: s.args.set,
  });
}

/** run, plan and stop: the commands that read IMDS and touch the world. */
async function wire(s: Session, command: "run" | "plan" | "stop"): Promise<number> {
  const started = s.clock.now();
  const imds = new ImdsClient({
    endpoint: imdsEndpointFrom(s.o.env),
    clock: s.clock,
    deadline: s.deadline,
    log: s.log.child({ component: "imds" }),
  });
  let aws: AwsClients | undefined;
  try {
    const fromFile = await readUserDataFile(s);
    const [instance, userData] = await Promise.all([
      readInstanceFacts(imds),
      fromFile !== undefined ? Promise.resolve(fromFile) : readUserData(imds),
    ]);
    const loaded = await configFrom(s, userData);
    s.log.info(`${command} on ${instance.id} (${instance.privateIpv4}, ${instance.az})`, {
      config: loaded.sources.join(", ") || "defaults only",
      ...(loaded.profile !== undefined && { profile: loaded.profile }),
    });
    aws = createAwsClients({
      region: instance.region,
      env: s.o.env,
      clock: s.clock,
      deadline: s.deadline,
      log: s.log.child({ component: "aws" }),
      userAgent: `bootlace/${version}`,
      ...(s.o.credentials && { credentials: s.o.credentials }),
    });
    const statePath = underRoot(s.args.root, paths.state);
    const lock =
      command === "plan" ? undefined : await acquireLock(underRoot(s.args.root, paths.lock), s.clock, s.deadline);
    try {
      const previous = await readState(statePath, instance.id);
      const runner = {
        actions: s.o.actions ?? allActions,
        context: {
          config: loaded.config,
          instance,
          aws,
          clock: s.clock,
          deadline: s.deadline,
          log: s.log,
          root: s.args.root,
        },
        previous: previous?.saved ?? {},
      };
      let results: ActionResult[];
      if (command === "stop") {
        results = await stopAll(runner, previous?.saved ?? {});
      } else {
        const planned = await planAll(runner);
        if (command === "plan") {
          results = [...planned.values()].map((p) => ({
            name: p.name,
            status: p.error === undefined ? "ok" : "failed",
            changes: p.plan?.changes ?? [],
            durationMs: p.durationMs,
            ...(p.error !== undefined && { error: describeCause(p.error) }),
          }));
          for (const r of results) if (r.error) s.log.child({ action: r.name }).error(`plan failed: ${r.error}`);
        } else {
          results = await applyAll(runner, planned);
        }
      }
      const failed = results.filter((r) => r.status !== "ok");
      const code = failed.length > 0 ? exitCodes.failed : exitCodes.ok;
      const durationMs = s.clock.now() - started;
      if (command !== "plan") {
        await writeState(statePath, nextState(previous, instance, command, results, started, s.clock.now(), code));
      }
      report(s, command, instance, results, durationMs);
      return code;
    } finally {
      await lock?.release();
    }
  } finally {
    aws?.destroy();
    await imds.close();
  }
}

function nextState(
  previous: StateFile | undefined,
  instance: InstanceFacts,
  command: "run" | "stop",
  results: ActionResult[],
  started: number,
  finished: number,
  exitCode: number,
): StateFile {
  const saved = { ...previous?.saved };
  for (const r of results) if (r.state !== undefined) saved[r.name] = r.state;
  const record: CommandRecord = {
    started: new Date(started).toISOString(),
    finished: new Date(finished).toISOString(),
    exit_code: exitCode,
    changes: results.reduce((n, r) => n + r.changes.length, 0),
    failed: results.filter((r) => r.status !== "ok").map((r) => r.name),
    actions: Object.fromEntries(
      results.map((r) => [
        r.name,
        {
          status: r.status,
          changes: r.changes,
          duration_ms: r.durationMs,
          ...(r.error !== undefined && { error: r.error }),
        },
      ]),
    ),
  };
  return { version: 1, instance_id: instance.id, ...previous, saved, [command]: record };
}

/** What the command did, for people (stdout) or machines (--json). */
function report(
  s: Session,
  command: string,
  instance: InstanceFacts,
  results: ActionResult[],
  durationMs: number,
): void {
  const changes = results.reduce((n, r) => n + r.changes.length, 0);
  const failed = results.filter((r) => r.status !== "ok");
  if (s.args.json) {
    s.o.stdout(
      JSON.stringify(
        {
          command,
          instance: { id: instance.id, region: instance.region, az: instance.az, private_ipv4: instance.privateIpv4 },
          changes,
          failed: failed.length,
          duration_ms: durationMs,
          actions: results.map((r) => ({
            name: r.name,
            status: r.status,
            changes: r.changes,
            duration_ms: r.durationMs,
            ...(r.error !== undefined && { error: r.error }),
          })),
        },
        null,
        2,
      ) + "\n",
    );
  } else {
    const verb = command === "plan" ? "would make" : "made";
    const lines = [
      `bootlace ${command} on ${instance.id}: ${verb} ${changes} change${changes === 1 ? "" : "s"}` +
        `${failed.length > 0 ? `, ${failed.length} action${failed.length === 1 ? "" : "s"} failed` : ""}` +
        ` in ${(durationMs / 1000).toFixed(1)} s`,
    ];
    if (results.length === 0) lines.push("  nothing is configured");
    for (const r of results) {
      const head = r.status === "ok" ? `${r.changes.length} change${r.changes.length === 1 ? "" : "s"}` : r.status;
      lines.push(`  ${r.name}: ${head}${r.error ? ` — ${r.error}` : ""}`);
      for (const c of r.changes) lines.push(`    ${c.kind} ${c.target}${c.detail ? ` ${c.detail}` : ""}`);
    }
    s.o.stdout(lines.join("\n") + "\n");
  }
}

async function validate(s: Session, file: string | undefined): Promise<number> {
  if (file !== undefined) {
    const path = resolvePath(s.o, file);
    let content: Buffer;
    try {
      content = await fs.readFile(path);
    } catch (error) {
      throw new ConfigError(`cannot read: ${describeCause(error)}`, { source: path });
    }
    const result = await validateFile(path, content);
    s.o.stdout(`${path}: valid ${result.kind} (${result.sources.join(", ") || "no bootlace configuration"})\n`);
    return exitCodes.ok;
  }
  const loaded = await configFrom(s, await readUserDataFile(s));
  s.o.stdout(`valid configuration (${loaded.sources.join(", ") || "defaults only"})\n`);
  return exitCodes.ok;
}

async function status(s: Session): Promise<number> {
  const state = await readState(underRoot(s.args.root, paths.state));
  if (s.args.json) {
    s.o.stdout(JSON.stringify(state ?? null, null, 2) + "\n");
    return exitCodes.ok;
  }
  if (!state) {
    s.o.stdout("no run recorded yet\n");
    return exitCodes.ok;
  }
  const lines = [`instance ${state.instance_id}`];
  for (const command of ["run", "stop"] as const) {
    const r = state[command];
    if (!r) continue;
    lines.push(
      `last ${command}: ${r.finished}, exit ${r.exit_code}, ${r.changes} change${r.changes === 1 ? "" : "s"}` +
        `${r.failed.length > 0 ? `, failed: ${r.failed.join(", ")}` : ""}`,
    );
    for (const [name, a] of Object.entries(r.actions)) {
      lines.push(`  ${name}: ${a.status}${a.error ? ` — ${a.error}` : ""}`);
      for (const c of a.changes) lines.push(`    ${c.kind} ${c.target}${c.detail ? ` ${c.detail}` : ""}`);
    }
  }
  s.o.stdout(lines.join("\n") + "\n");
  return exitCodes.ok;
}
