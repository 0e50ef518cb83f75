// The one wiring procedure every command that touches the world shares (run, plan, stop, watch, and those to come):
// read the world once (IMDS facts and user-data, then the configuration), make the AWS clients and the instance
// context once, hold the run lock and record state.json in one place.
import { promises as fs } from "node:fs";
import { resolve } from "node:path";
import { actions as allActions } from "../actions";
import type { ActionName } from "../actions/types";
import type { Aws } from "../aws/clients";
import { createAwsClients } from "../aws/clients";
import { version } from "../cli";
import type { LoadedConfig } from "../config/load";
import { loadConfig } from "../config/load";
import type { Config } from "../config/schema";
import { ConfigError, describeCause } from "../core/errors";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";
import type { InstanceFacts } from "../instance/facts";
import { ImdsClient, ImdsTokenCache, imdsEndpointFrom } from "../instance/imds";
import { readInstanceFacts, readUserData } from "../instance/read";
import { readIsSpot, readLifecycleState } from "../lifecycle/signals";
import type { Tags } from "../instance/tags";
import { tagsReader } from "../instance/tags";
import { RootFs } from "../root/fs";
import type { StateFile, StateRead } from "../root/state";
import { readState, writeState } from "../root/state";
import type { Session } from "../commands/session";
import type { RunnerOptions } from "./runner";

/** What a command reads before it decides anything: the instance and the effective configuration. */
export interface World {
  instance: InstanceFacts;
  /** The instance's tags as IMDS exposed them; undefined when it does not (they are then read from the API). */
  imdsTags?: Tags;
  loaded: LoadedConfig;
  /** The IMDS token the world was read with: the instance-profile credentials reuse it (one PUT per run). */
  imdsTokens?: ImdsTokenCache;
  /** IMDS's autoscaling/target-lifecycle-state (InService, Warmed:Stopped...); undefined outside Auto Scaling. */
  lifecycleState?: string;
  /** EC2 says this is a spot instance (meta-data/instance-life-cycle). */
  spot?: boolean;
}

/** A path given on the command line, taken from the agent's working directory. */
export function resolvePath(s: Session, file: string): string {
  return resolve(s.o.cwd ?? process.cwd(), file);
}

/** The --user-data file, when one is given (it replaces IMDS user-data). */
export async function readUserDataFile(s: Session): Promise<Buffer | undefined> {
  if (s.args.userData === undefined) return undefined;
  const path = resolvePath(s, s.args.userData);
  try {
    return await fs.readFile(path);
  } catch (error) {
    throw new ConfigError(`cannot read the user-data file: ${describeCause(error)}`, { source: path });
  }
}

/** The effective configuration: baked files ← profile ← this user-data ← --set flags. */
export function configFrom(s: Session, userData: Buffer | undefined): Promise<LoadedConfig> {
  return loadConfig({
    root: s.args.root,
    ...(s.args.config !== undefined && { configFile: resolvePath(s, s.args.config) }),
    ...(userData !== undefined && { userData }),
    ...(s.args.profile !== undefined && { profile: s.args.profile }),
    sets: s.args.set,
  });
}

/** IMDS (facts and user-data, concurrently) and then the configuration, within the deadline given. */
export async function readWorld(s: Session, deadline: Deadline): Promise<World> {
  const imdsTokens = new ImdsTokenCache();
  const imds = imdsClient(s, deadline, imdsTokens);
  try {
    const fromFile = await readUserDataFile(s);
    const [{ facts, tags }, userData, lifecycleState, spot] = await Promise.all([
      readInstanceFacts(imds),
      fromFile !== undefined ? Promise.resolve(fromFile) : readUserData(imds),
      readLifecycleState(imds),
      readIsSpot(imds),
    ]);
    const loaded = await configFrom(s, userData);
    return {
      instance: facts,
      ...(tags !== undefined && { imdsTags: tags }),
      loaded,
      imdsTokens,
      ...(lifecycleState !== undefined && { lifecycleState }),
      ...(spot && { spot }),
    };
  } finally {
    await imds.close();
  }
}

/** A client of the instance's IMDS bounded by this deadline, with the token cache given (the world's, to reuse it). */
export function imdsClient(s: Session, deadline: Deadline, tokens: ImdsTokenCache | undefined): ImdsClient {
  return new ImdsClient({
    endpoint: imdsEndpointFrom(s.o.env),
    clock: s.clock,
    deadline,
    log: s.log.child({ component: "imds" }),
    ...(tokens && { tokens }),
  });
}

export interface WiringOptions {
  deadline: Deadline;
  /** Take the run lock and read state.json under it (every command that may change something). */
  lock: boolean;
  /** Only these of the session's actions (default: all of them). */
  only?: readonly ActionName[];
  /** The configuration the actions see (default: the world's). */
  config?: Config;
  /** The logger the actions write to (default: the session's). */
  log?: Logger;
}

export interface Wiring {
  /** What the runner needs: the actions, the context every action shares, what each saved last time. */
  runner: RunnerOptions;
  /** state.json as the last command left it (read under the lock), for the record this one adds. */
  previous?: StateFile;
  /** Actions whose saved part of state.json was damaged and dropped ("all": none of it could be used). */
  lost: ActionName[] | "all";
  aws: Aws;
  /** Records the command's state (under the lock). */
  save(state: StateFile): Promise<void>;
}

/** The one warning for a damaged state.json: what was wrong, where the original is, and how the command goes on. */
function describeDamage(read: StateRead): string {
  const kept = read.keptAs
    ? `the original is kept as ${read.keptAs}`
    : "left as it is (the next run or stop sets it aside)";
  const goes =
    read.lost === "all"
      ? "going on as on a first boot"
      : read.lost.length > 0
        ? `going on without what ${read.lost.join(", ")} saved`
        : "going on with the rest of it";
  return `state.json is damaged: ${read.problems.join("; ")}; ${kept}; ${goes}`;
}

/**
 * Runs `fn` with everything a command needs to touch the world: the AWS door, the instance context (tags read from
 * IMDS or else once from the API), the filesystem under --root, the lock and the previous state. The clients are
 * destroyed and the lock released however fn ends.
 */
export async function withWiring<T>(
  s: Session,
  world: World,
  o: WiringOptions,
  fn: (w: Wiring) => Promise<T>,
): Promise<T> {
  // The instance-profile credentials come through an IMDS client bounded by this deadline, with the world's token.
  const imds = imdsClient(s, o.deadline, world.imdsTokens);
  const aws = createAwsClients({
    region: world.instance.region,
    env: s.o.env,
    clock: s.clock,
    deadline: o.deadline,
    log: s.log.child({ component: "aws" }),
    userAgent: `bootlace/${version}`,
    imds,
    ...(s.o.credentials && { credentials: s.o.credentials }),
  });
  const root = new RootFs(s.args.root);
  try {
    const lock = o.lock ? await root.lock(s.clock, o.deadline) : undefined;
    try {
      const log = o.log ?? s.log;
      const read = await readState(root, {
        instanceId: world.instance.id,
        ...(o.lock && { setAside: { now: s.clock.now() } }),
      });
      if (read.problems.length > 0) log.warn(describeDamage(read));
      const previous = read.state;
      const runner: RunnerOptions = {
        actions: (s.o.actions ?? allActions).filter((a) => o.only?.includes(a.name) ?? true),
        context: {
          config: o.config ?? world.loaded.config,
          instance: world.instance,
          tags: tagsReader(world.instance, world.imdsTags, aws, log),
          aws,
          fs: root,
          clock: s.clock,
          deadline: o.deadline,
          log,
        },
        previous: previous?.saved ?? {},
      };
      return await fn({
        runner,
        ...(previous && { previous }),
        lost: read.lost,
        aws,
        save: (state) => writeState(root, state),
      });
    } finally {
      await lock?.release();
    }
  } finally {
    aws.destroy();
    await imds.close();
  }
}
