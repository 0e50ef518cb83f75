// What a command did: the record state.json keeps, and the result it prints for people (stdout) or machines (--json).
import { codeOf, describeCause } from "../core/errors";
import type { InstanceFacts } from "../instance/facts";
import type { CommandRecord, StateFile } from "../root/state";
import type { ActionResult } from "./runner";

/** The state after a command: its record, and what each action saved (kept from before when an action saved nothing). */
export function nextState(
  previous: StateFile | undefined,
  instance: InstanceFacts,
  command: "run" | "stop" | "watch",
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
    changes: countChanges(results),
    failed: results.filter((r) => r.status !== "ok").map((r) => r.name),
    actions: Object.fromEntries(results.map((r) => [r.name, actionRecord(r)])),
  };
  return { version: 1, instance_id: instance.id, ...previous, saved, [command]: record };
}

/** One action's result as state.json and --json carry it: the error as a code and a message. */
function actionRecord(r: ActionResult) {
  return {
    status: r.status,
    changes: r.changes,
    duration_ms: r.durationMs,
    ...(r.error !== undefined && { error: describeCause(r.error), error_code: codeOf(r.error) }),
    ...(r.summary !== undefined && { summary: r.summary }),
  };
}

function countChanges(results: ActionResult[]): number {
  return results.reduce((n, r) => n + r.changes.length, 0);
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? "" : "s"}`;

/** What a command adds to its result beyond the actions (the lifecycle phase, the stop path's reason). */
export interface ResultExtra {
  lines?: string[];
  json?: Record<string, unknown>;
}

/** The result of run, plan or stop, as JSON or as lines for people. */
export function formatResult(
  command: string,
  instance: InstanceFacts,
  results: ActionResult[],
  durationMs: number,
  json: boolean,
  extra: ResultExtra = {},
): string {
  const changes = countChanges(results);
  const failed = results.filter((r) => r.status !== "ok");
  if (json) {
    const result = {
      command,
      instance: { id: instance.id, region: instance.region, az: instance.az, private_ipv4: instance.privateIpv4 },
      changes,
      failed: failed.length,
      duration_ms: durationMs,
      actions: results.map((r) => ({ name: r.name, ...actionRecord(r) })),
      ...extra.json,
    };
    return JSON.stringify(result, null, 2) + "\n";
  }
  const verb = command === "plan" ? "would make" : "made";
  const lines = [
    `bootlace ${command} on ${instance.id}: ${verb} ${plural(changes, "change")}` +
      `${failed.length > 0 ? `, ${plural(failed.length, "action")} failed` : ""}` +
      ` in ${(durationMs / 1000).toFixed(1)} s`,
  ];
  lines.push(...(extra.lines ?? []).map((l) => `  ${l}`));
  if (results.length === 0 && !extra.lines?.length) lines.push("  nothing is configured");
  for (const r of results) {
    const head = r.status === "ok" ? plural(r.changes.length, "change") : r.status;
    lines.push(`  ${r.name}: ${head}${r.error ? ` — ${describeCause(r.error)}` : ""}`);
    if (r.summary) lines.push(`    ${r.summary}`);
    for (const c of r.changes) lines.push(`    ${c.kind} ${c.target}${c.detail ? ` ${c.detail}` : ""}`);
  }
  return lines.join("\n") + "\n";
}
