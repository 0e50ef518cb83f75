// run, plan and stop: read IMDS and the configuration, then plan and apply (or undo) the actions.
import { actions as allActions } from "../actions";
import type { AwsClients } from "../aws/clients";
import { createAwsClients } from "../aws/clients";
import { version } from "../cli";
import { describeCause } from "../core/errors";
import type { InstanceFacts } from "../instance/facts";
import { ImdsClient, imdsEndpointFrom } from "../instance/imds";
import { readInstanceFacts, readUserData } from "../instance/read";
import { acquireLock } from "../root/lock";
import { paths, underRoot } from "../root/paths";
import type { ActionResult } from "../wiring/runner";
import { applyAll, planAll, stopAll } from "../wiring/runner";
import type { CommandRecord, StateFile } from "../root/state";
import { readState, writeState } from "../root/state";
import type { Session } from "./session";
import { configFrom, exitCodes, readUserDataFile } from "./session";

export /** run, plan and stop: the commands that read IMDS and touch the world. */
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
          ...(r.summary !== undefined && { summary: r.summary }),
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
            ...(r.summary !== undefined && { summary: r.summary }),
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
      if (r.summary) lines.push(`    ${r.summary}`);
      for (const c of r.changes) lines.push(`    ${c.kind} ${c.target}${c.detail ? ` ${c.detail}` : ""}`);
    }
    s.o.stdout(lines.join("\n") + "\n");
  }
}
