// state.json: what the last run and stop did, and what each action saved for `stop` to undo. It is read defensively:
// a torn disk or a hand edit must not stop a boot. A file that does not parse, or whose frame does not match, is set
// aside whole (state.json.bad-<time>) and the command goes on as on a first boot; a record or an action's saved part
// that does not match is dropped (the original kept aside the same way) and the rest is used.
import { z } from "zod";
import type { ActionName, Change } from "../actions/types";
import { describeCause } from "../core/errors";
import type { LeftRecord, LifecycleRecord } from "../lifecycle/record";
import type { RootFs } from "./fs";
import { paths } from "./paths";
import { savedSchemas } from "./saved";

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

const actionName = z.enum(["elastic_ip", "load_balancer", "dns", "peers", "files"]);

const commandRecord = z.object({
  started: z.string(),
  finished: z.string(),
  exit_code: z.number().int(),
  changes: z.number().int(),
  failed: z.array(actionName),
  actions: z.partialRecord(
    actionName,
    z.object({
      status: z.enum(["ok", "failed", "skipped"]),
      changes: z.array(z.object({ kind: z.string(), target: z.string(), detail: z.string().exactOptional() })),
      error: z.string().exactOptional(),
      error_code: z.string().exactOptional(),
      summary: z.string().exactOptional(),
      duration_ms: z.number(),
    }),
  ),
});

const hookRecord = z.object({
  group: z.string(),
  hook: z.string(),
  result: z.enum(["CONTINUE", "ABANDON"]).exactOptional(),
  heartbeats: z.number().int(),
  attempts: z.number().int(),
  error: z.string().exactOptional(),
});

const lifecycleRecord = z.object({
  phase: z.enum(["prepared", "wired"]),
  target_state: z.string().exactOptional(),
  by: z.enum(["run", "watch"]),
  at: z.string(),
  deferred_files: z.array(z.string()).exactOptional(),
  launch_hook: z.array(hookRecord).exactOptional(),
  launch_hook_error: z.string().exactOptional(),
});

const leftRecord = z.object({
  reason: z.enum(["shutdown", "spot-interruption", "rebalance", "termination"]),
  detail: z.string().exactOptional(),
  act_by: z.string().exactOptional(),
  started: z.string(),
  finished: z.string(),
  exit_code: z.number().int(),
  termination_hook: z.array(hookRecord).exactOptional(),
});

/** The frame: what must hold for any of the file to be used. The records and saved parts are checked one by one. */
const frame = z.object({
  version: z.literal(1),
  instance_id: z.string(),
  saved: z.record(z.string(), z.unknown()),
});

const commands = ["run", "stop", "watch"] as const;

/** What reading state.json found. */
export interface StateRead {
  /** The usable state; undefined on a first boot, for another instance's state, or when none of it could be used. */
  state?: StateFile;
  /** What was wrong with it, each in words; empty when it was whole. */
  problems: string[];
  /** Actions whose saved part was lost to damage ("all": the whole file was unusable). */
  lost: ActionName[] | "all";
  /** Where the damaged file was kept (as the instance names it), when it was set aside. */
  keptAs?: string;
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 3)
    .map((i) => `${i.path.length > 0 ? `${i.path.join(".")}: ` : ""}${i.message}`)
    .join("; ");
}

/** The parts of a state whose frame holds, each checked; what did not match is dropped and said. */
function checkParts(raw: Record<string, unknown>, framed: z.infer<typeof frame>): Omit<StateRead, "keptAs"> {
  const problems: string[] = [];
  const lost: ActionName[] = [];
  const state: StateFile = { version: 1, instance_id: framed.instance_id, saved: {} };
  for (const command of commands) {
    if (raw[command] === undefined) continue;
    const record = commandRecord.safeParse(raw[command]);
    if (record.success) state[command] = record.data;
    else problems.push(`the record of the last ${command} was dropped (${describeIssues(record.error)})`);
  }
  // The lifecycle's records (warm-pool phase, the stop path's run): checked the same way.
  if (raw.lifecycle !== undefined) {
    const lifecycle = lifecycleRecord.safeParse(raw.lifecycle);
    if (lifecycle.success) state.lifecycle = lifecycle.data;
    else problems.push(`the lifecycle record was dropped (${describeIssues(lifecycle.error)})`);
  }
  if (raw.left !== undefined) {
    const left = leftRecord.safeParse(raw.left);
    if (left.success) state.left = left.data;
    else problems.push(`the stop path's record was dropped (${describeIssues(left.error)})`);
  }
  for (const [name, part] of Object.entries(framed.saved)) {
    const action = actionName.safeParse(name);
    const schema = action.success ? savedSchemas[action.data] : undefined;
    const checked = schema?.safeParse(part);
    if (action.success && checked?.success) {
      state.saved[action.data] = checked.data;
      continue;
    }
    if (action.success) lost.push(action.data);
    const why =
      checked && !checked.success
        ? describeIssues(checked.error)
        : `bootlace saves nothing under ${JSON.stringify(name)}`;
    problems.push(`what ${name} saved was dropped (${why})`);
  }
  return { state, problems, lost };
}

/** What state.json's text holds, checked; "damaged" cases say why in `problems`. */
function judge(text: string, instanceId: string | undefined): Omit<StateRead, "keptAs"> {
  const whole = (why: string): Omit<StateRead, "keptAs"> => ({ problems: [why], lost: "all" });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return whole(`it is not JSON (${describeCause(error)})`);
  }
  const framed = frame.safeParse(json);
  if (!framed.success) return whole(`it is not a state file of this bootlace (${describeIssues(framed.error)})`);
  if (instanceId !== undefined && framed.data.instance_id !== instanceId) return { problems: [], lost: [] };
  return checkParts(json as Record<string, unknown>, framed.data);
}

/** "state.json.bad-20260101T120000.000Z": beside state.json, for the operator. */
function asideName(now: number): string {
  return `${paths.state}.bad-${new Date(now).toISOString().replace(/[-:]/g, "")}`;
}

/**
 * The state of the last run on this instance; a state file from another instance (a baked AMI) is ignored. Damage
 * is reported in `problems`, never thrown; only a file that cannot be read at all (permission, I/O) throws. With
 * `setAside` (under the run lock) the damaged file is kept as state.json.bad-<time> and state.json is left holding
 * only what was usable, so the damage is reported once.
 */
export async function readState(
  root: RootFs,
  o: { instanceId?: string; setAside?: { now: number } } = {},
): Promise<StateRead> {
  const text = await root.readText(paths.state);
  if (text === undefined) return { problems: [], lost: [] };
  const read = judge(text, o.instanceId);
  if (read.problems.length === 0 || !o.setAside) return read;
  const keptAs = asideName(o.setAside.now);
  await root.rename(paths.state, keptAs);
  if (read.state) await writeState(root, read.state);
  return { ...read, keptAs };
}

export async function writeState(root: RootFs, state: StateFile): Promise<void> {
  await root.write({
    path: paths.state,
    content: JSON.stringify(state, null, 2) + "\n",
    mode: 0o600,
    createDirs: true,
  });
}
