// status: prints what the last run and stop did, from state.json.
import { RootFs } from "../root/fs";
import { readState } from "../root/state";
import { describeLifecycle } from "../lifecycle/record";
import type { Session } from "./session";
import { exitCodes } from "./session";

export async function status(s: Session): Promise<number> {
  const { state, problems } = await readState(new RootFs(s.args.root));
  // Said, not repaired: status changes nothing (the next run or stop sets a damaged state.json aside).
  for (const problem of problems) s.log.warn(`state.json: ${problem}`);
  if (s.args.json) {
    s.o.stdout(JSON.stringify(state ?? null, null, 2) + "\n");
    return exitCodes.ok;
  }
  if (!state) {
    s.o.stdout("no run recorded yet\n");
    return exitCodes.ok;
  }
  const lines = [`instance ${state.instance_id}`];
  for (const command of ["run", "stop", "watch"] as const) {
    const r = state[command];
    if (!r) continue;
    lines.push(
      `last ${command}: ${r.finished}, exit ${r.exit_code}, ${r.changes} change${r.changes === 1 ? "" : "s"}` +
        `${r.failed.length > 0 ? `, failed: ${r.failed.join(", ")}` : ""}`,
    );
    for (const [name, a] of Object.entries(r.actions)) {
      lines.push(`  ${name}: ${a.status}${a.error ? ` — ${a.error}` : ""}`);
      if (a.summary) lines.push(`    ${a.summary}`);
      for (const c of a.changes) lines.push(`    ${c.kind} ${c.target}${c.detail ? ` ${c.detail}` : ""}`);
    }
  }
  lines.push(...describeLifecycle(state.lifecycle, state.left));
  s.o.stdout(lines.join("\n") + "\n");
  return exitCodes.ok;
}
