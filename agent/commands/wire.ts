// run, plan and stop: read the world, then plan and apply (or undo) the actions through the wiring procedure.
import { exitCodes } from "../commands/session";
import type { Session } from "./session";
import type { Wiring } from "../wiring/procedure";
import { readWorld, withWiring } from "../wiring/procedure";
import { formatResult, nextState } from "../wiring/report";
import type { ActionResult } from "../wiring/runner";
import { applyAll, planAll, planResults, stopAll } from "../wiring/runner";

/**
 * What `stop` cannot know because state.json was damaged: per configured action that undoes something at stop,
 * whose saved part was lost, one line (it then undoes nothing of that action).
 */
function unknowable(w: Wiring): string[] {
  const config = w.runner.context.config;
  return w.runner.actions
    .filter((a) => a.stop && a.enabled(config) && (w.lost === "all" || w.lost.includes(a.name)))
    .map(
      (a) =>
        `stop: what ${a.name} made before is not known (its part of state.json was damaged), so stop undoes none ` +
        `of it; check by hand what should not outlive this instance`,
    );
}

/** run, plan and stop: the commands that read IMDS and touch the world. */
export async function wire(s: Session, command: "run" | "plan" | "stop"): Promise<number> {
  const started = s.clock.now();
  const world = await readWorld(s, s.deadline);
  const { instance, loaded } = world;
  s.log.info(`${command} on ${instance.id} (${instance.privateIpv4}, ${instance.az})`, {
    config: loaded.sources.join(", ") || "defaults only",
    ...(loaded.profile !== undefined && { profile: loaded.profile }),
  });
  return withWiring(s, world, { deadline: s.deadline, lock: command !== "plan" }, async (w) => {
    let results: ActionResult[];
    if (command === "stop") for (const line of unknowable(w)) s.log.warn(line);
    if (command === "stop") results = await stopAll(w.runner, w.runner.previous);
    else if (command === "plan") results = planResults(await planAll(w.runner), s.log);
    else results = await applyAll(w.runner, await planAll(w.runner));
    const code = results.some((r) => r.status !== "ok") ? exitCodes.failed : exitCodes.ok;
    if (command !== "plan") {
      await w.save(nextState(w.previous, instance, command, results, started, s.clock.now(), code));
    }
    s.o.stdout(formatResult(command, instance, results, s.clock.now() - started, s.args.json));
    return code;
  });
}
