import type { Action, ActionName } from "../../agent/actions/types";
import { ConfigError, ConfigErrors } from "../../agent/core/errors";
import { applyAll, planAll, stopAll } from "../../agent/wiring/runner";
import { testContext } from "../support/context";

interface Script {
  name: ActionName;
  deps?: ActionName[];
  fail?: "plan" | "apply" | "config";
  output?: unknown;
  delayMs?: number;
}

/** A fake action that records what happened to it, in order, in `events`. */
function scripted(s: Script, events: string[]): Action {
  const wait = (): Promise<void> => new Promise((r) => setTimeout(r, s.delayMs ?? 0));
  return {
    name: s.name,
    enabled: () => true,
    dependsOn: () => s.deps ?? [],
    plan(ctx) {
      events.push(`plan ${s.name} upstream=${JSON.stringify(ctx.upstream)}`);
      if (s.fail === "config") return Promise.reject(new ConfigError("bad zone", undefined, `${s.name}.zone`));
      if (s.fail === "plan") return Promise.reject(new Error(`${s.name} could not read`));
      return Promise.resolve({
        changes: [{ kind: "create", target: s.name }],
        data: null,
        output: `planned-${s.name}`,
      });
    },
    async apply() {
      events.push(`apply-start ${s.name}`);
      await wait();
      events.push(`apply-end ${s.name}`);
      if (s.fail === "apply") throw new Error(`${s.name} exploded`);
      return { changes: [{ kind: "create", target: s.name }], state: { saved: s.name }, output: s.output };
    },
    stop() {
      events.push(`stop ${s.name}`);
      return Promise.resolve({ changes: [{ kind: "delete", target: s.name }], state: { stopped: true } });
    },
  };
}

function options(scripts: Script[], events: string[]) {
  const ctx = testContext({});
  return {
    actions: scripts.map((s) => scripted(s, events)),
    context: { ...ctx },
    previous: {},
  };
}

describe("runner", () => {
  it("applies independent actions concurrently and a dependent one after its dependency, with its output", async () => {
    const events: string[] = [];
    const o = options(
      [
        { name: "elastic_ip", output: { publicIp: "203.0.113.7" }, delayMs: 30 },
        { name: "load_balancer", delayMs: 5 },
        { name: "dns", deps: ["elastic_ip"] },
      ],
      events,
    );

    const results = await applyAll(o, await planAll(o));

    expect(results.map((r) => [r.name, r.status])).toEqual([
      ["elastic_ip", "ok"],
      ["load_balancer", "ok"],
      ["dns", "ok"],
    ]);
    // load_balancer started before elastic_ip finished: they ran at the same time.
    expect(events.indexOf("apply-start load_balancer")).toBeLessThan(events.indexOf("apply-end elastic_ip"));
    // dns planned first with what elastic_ip expected, then again with what it produced, after it finished.
    expect(events).toContain('plan dns upstream={"elastic_ip":"planned-elastic_ip"}');
    const replan = events.indexOf('plan dns upstream={"elastic_ip":{"publicIp":"203.0.113.7"}}');
    expect(replan).toBeGreaterThan(events.indexOf("apply-end elastic_ip"));
  });

  it("does not plan a dependent action again when its dependency produced what the plan expected", async () => {
    const events: string[] = [];
    const o = options(
      [
        { name: "elastic_ip", output: "planned-elastic_ip" },
        { name: "dns", deps: ["elastic_ip"] },
      ],
      events,
    );

    const results = await applyAll(o, await planAll(o));

    expect(results.map((r) => r.status)).toEqual(["ok", "ok"]);
    expect(events.filter((e) => e.startsWith("plan dns"))).toHaveLength(1);
  });

  it("carries on past a failed action, and skips only what depends on it", async () => {
    const events: string[] = [];
    const o = options(
      [
        { name: "elastic_ip", fail: "apply" },
        { name: "load_balancer" },
        { name: "dns", deps: ["elastic_ip"] },
        { name: "files" },
      ],
      events,
    );

    const results = await applyAll(o, await planAll(o));

    expect(Object.fromEntries(results.map((r) => [r.name, r.status]))).toEqual({
      elastic_ip: "failed",
      load_balancer: "ok",
      dns: "skipped",
      files: "ok",
    });
    expect(results.find((r) => r.name === "elastic_ip")?.error?.message).toBe("elastic_ip exploded");
    const skipped = results.find((r) => r.name === "dns")?.error;
    expect(skipped?.message).toBe("not run: elastic_ip failed");
    expect(skipped?.name).toBe("DependencyFailed");
    expect(events).not.toContain("apply-start dns");
  });

  it("records a failed read as that action's failure and still applies the others", async () => {
    const events: string[] = [];
    const o = options([{ name: "dns", fail: "plan" }, { name: "files" }], events);

    const results = await applyAll(o, await planAll(o));

    expect(results.map((r) => [r.name, r.status, r.error?.message])).toEqual([
      ["dns", "failed", "dns could not read"],
      ["files", "ok", undefined],
    ]);
  });

  it("throws every configuration error found while planning, before applying anything", async () => {
    const events: string[] = [];
    const o = options([{ name: "dns", fail: "config" }, { name: "files", fail: "config" }, { name: "peers" }], events);

    const error = await planAll(o).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigErrors);
    expect((error as ConfigErrors).errors.map((e) => e.message)).toEqual([
      "dns.zone: bad zone",
      "files.zone: bad zone",
    ]);
    expect(events.filter((e) => e.startsWith("apply"))).toEqual([]);
  });

  it("stop runs only the actions with saved state", async () => {
    const events: string[] = [];
    const o = options([{ name: "dns" }, { name: "load_balancer" }], events);

    const results = await stopAll(o, { dns: { records: [] } });

    expect(events).toEqual(["stop dns"]);
    expect(results).toEqual([expect.objectContaining({ name: "dns", status: "ok", state: { stopped: true } })]);
  });

  it("refuses a list where an action comes before one it depends on", async () => {
    const o = options([{ name: "dns", deps: ["elastic_ip"] }, { name: "elastic_ip" }], []);
    await expect(planAll(o)).rejects.toThrow(/dns depends on elastic_ip, which comes later/);
  });
  it("gives up an action that does not end after the deadline, and the others' results stand", async () => {
    const events: string[] = [];
    const o = options([{ name: "elastic_ip" }, { name: "files" }], events);
    const deadline = new AbortController();
    o.context = { ...o.context, deadline: { at: Date.now(), signal: deadline.signal } };
    // files hangs in apply for good (a promise that never settles, a call that ignores the signal).
    const hung = o.actions[1]!;
    o.actions = [o.actions[0]!, { ...hung, apply: () => new Promise(() => undefined) }];

    const planned = await planAll(o);
    const applying = applyAll(o, planned);
    await new Promise((r) => setTimeout(r, 20));
    deadline.abort();
    const results = await applying;

    expect(results.map((r) => [r.name, r.status])).toEqual([
      ["elastic_ip", "ok"],
      ["files", "failed"],
    ]);
    const error = results.find((r) => r.name === "files")?.error;
    expect(error?.name).toBe("DeadlineError");
    expect(error?.message).toBe("files did not finish by the deadline");
  });
});
