// run, plan and stop: read the world, then plan and apply the actions in the instance's lifecycle phase (run), plan
// them (plan), or take the one stop path (stop), all through the wiring procedure.
import { exitCodes } from "../commands/session";
import type { Session } from "./session";
import { configForPhase, wireInstance } from "../lifecycle/launch";
import { leave } from "../lifecycle/leave";
import { phaseFor } from "../lifecycle/phase";
import { describeLifecycle } from "../lifecycle/record";
import { readWorld, withWiring } from "../wiring/procedure";
import { formatResult } from "../wiring/report";
import { planAll, planResults } from "../wiring/runner";

/** run, plan and stop: the commands that read IMDS and touch the world. */
export async function wire(s: Session, command: "run" | "plan" | "stop"): Promise<number> {
  const started = s.clock.now();
  const world = await readWorld(s, s.deadline);
  const { instance, loaded } = world;
  s.log.info(`${command} on ${instance.id} (${instance.privateIpv4}, ${instance.az})`, {
    config: loaded.sources.join(", ") || "defaults only",
    ...(loaded.profile !== undefined && { profile: loaded.profile }),
    ...(world.lifecycleState !== undefined && { lifecycle: world.lifecycleState }),
  });
  const print = (results: Parameters<typeof formatResult>[2], lines: string[], json: Record<string, unknown>) =>
    s.o.stdout(formatResult(command, instance, results, s.clock.now() - started, s.args.json, { lines, json }));

  if (command === "run") {
    const wired = await wireInstance(s, world, {
      deadline: s.deadline,
      by: "run",
      lifecycleState: world.lifecycleState,
    });
    print(wired.results, describeLifecycle(wired.lifecycle, undefined), { lifecycle: wired.lifecycle });
    return wired.code;
  }
  if (command === "stop") {
    const left = await leave(s, world, { reason: "shutdown", within: (s.deadline.at - s.clock.now()) / 1000 });
    const lines = left.alreadyDone
      ? [
          `the stop path already ran (${left.alreadyDone.reason}, finished ${left.alreadyDone.finished}): nothing repeated`,
        ]
      : [];
    print(left.results, lines, left.alreadyDone ? { already_done: left.alreadyDone } : {});
    return left.code;
  }
  const phase = phaseFor(loaded.config, world.lifecycleState);
  const config = configForPhase(loaded.config, world.lifecycleState);
  return withWiring(s, world, { deadline: s.deadline, lock: false, config }, async (w) => {
    const results = planResults(await planAll(w.runner), s.log);
    const lines =
      phase === "prepared" ? [`phase: prepare only (${world.lifecycleState ?? "?"}); wiring waits for InService`] : [];
    print(results, lines, { phase });
    return results.some((r) => r.status !== "ok") ? exitCodes.failed : exitCodes.ok;
  });
}
