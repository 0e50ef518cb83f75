// run, plan and stop: read the world, then plan and apply (or undo) the actions through the wiring procedure.
import { exitCodes } from "../commands/session";
import type { Session } from "./session";
import { readWorld, withWiring } from "../wiring/procedure";
import { formatResult, nextState } from "../wiring/report";
import type { ActionResult } from "../wiring/runner";
import { applyAll, planAll, planResults, stopAll } from "../wiring/runner";

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
