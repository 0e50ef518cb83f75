// state.json: what the last run and stop did, and what each action saved for `stop` to undo.
import type { ActionName, Change } from "../actions/types";
import type { LeftRecord, LifecycleRecord } from "../lifecycle/record";
import type { RootFs } from "./fs";
import { paths } from "./paths";

export interface ActionRecord {
  status: "ok" | "failed" | "skipped";
  changes: Change[];
  error?: string;
  /** The error's code: an AWS error code ("Throttling"), or bootlace's name for it ("ConfigError"). */
  error_code?: string;
  /** What holds now, in the action's words (e.g. the Elastic IP and its public DNS name). */
  summary?: string;
  duration_ms: number;
}

export interface CommandRecord {
  started: string;
  finished: string;
  exit_code: number;
  changes: number;
  failed: ActionName[];
  actions: Partial<Record<ActionName, ActionRecord>>;
}

export interface StateFile {
  version: 1;
  instance_id: string;
  run?: CommandRecord;
  stop?: CommandRecord;
  /** The last pass of `watch` that changed something or failed. */
  watch?: CommandRecord;
  /** The phase the last wiring ran (warm pools) and its launch hook. */
  lifecycle?: LifecycleRecord;
  /** The stop path's last run: why the instance left, and whether it is done (the shutdown then does not repeat it). */
  left?: LeftRecord;
  /** Per action, what stop() needs: kept from an earlier run when this run's action failed. */
  saved: Partial<Record<ActionName, unknown>>;
}

/** The state of the last run on this instance; a state file from another instance (a baked AMI) is ignored. */
export async function readState(root: RootFs, instanceId?: string): Promise<StateFile | undefined> {
  const text = await root.readText(paths.state);
  if (text === undefined) return undefined;
  let state: StateFile;
  try {
    state = JSON.parse(text) as StateFile;
  } catch {
    return undefined; // a damaged state file must not stop a boot; the next write replaces it
  }
  if (state.version !== 1 || (instanceId !== undefined && state.instance_id !== instanceId)) return undefined;
  return state;
}

export async function writeState(root: RootFs, state: StateFile): Promise<void> {
  await root.write({
    path: paths.state,
    content: JSON.stringify(state, null, 2) + "\n",
    mode: 0o600,
    createDirs: true,
  });
}
