// A fleet booting at once against AWS's account-wide throttling (npm run bench:fleet). First one agent alone, twice
// per action, for the calls each makes on a first and a second run; then, per modelled fleet size, N agents (separate
// processes running dist/bootlace.js, each with its own instance, a pool address and its own record) against one moto
// world behind the fidelity proxy, whose token buckets are divided by (modelled / N). The agents are started first and
// held at IMDS, then let go together (runFleet: on two cores, 40 Node processes starting at once would otherwise
// spend their first tens of seconds waiting for CPU, which instances with CPUs of their own do not). It prints agents
// wired, finish-time percentiles, calls per service (made and throttled), Elastic IP collisions, and the fleet's time
// against the floor the buckets impose on the calls one agent needs times the fleet.
//
//   npm run bench:fleet -- [--agents 40] [--fleets 100,200,500] [--deadline 300] [--initial-ms 0] [--pending-ms 0]
//                          [--actions elastic_ip,load_balancer,dns] [--imds-credentials] [--dump DIR]
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { CallRecord } from "../test/harness/aws-proxy";
import type { AwsService } from "../test/harness/aws-wire";
import { TokenBuckets } from "../test/harness/aws-proxy-throttle";
import { boot } from "../test/harness/booted";
import {
  fleetActions,
  runFleet,
  seedFleet,
  wiredInWorld,
  type AgentRun,
  type FleetAction,
} from "../test/harness/fleet";
import { runBootlace } from "../test/harness/run-bundle";
import { startWorld, type World } from "../test/harness/world";

interface Options {
  agents: number;
  fleets: number[];
  deadline: number;
  /** How long a registered target stays `initial` before it is healthy. */
  initialMs: number;
  /** How long a Route 53 change stays PENDING. */
  pendingMs: number;
  /** What each agent's user-data configures (default all three). */
  actions: FleetAction[];
  /** Credentials from each instance's IMDS rather than the environment (see runFleet). */
  imdsCredentials: boolean;
  /** Where to write every call and every agent's run as JSON, per fleet (for a closer look). */
  dump?: string;
}

function options(argv: string[]): Options {
  const o: Options = {
    agents: 40,
    fleets: [100, 200, 500],
    deadline: 300,
    initialMs: 0,
    pendingMs: 0,
    actions: [...fleetActions],
    imdsCredentials: false,
  };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value = ""] = [argv[i], argv[i + 1]];
    if (flag === "--imds-credentials") {
      o.imdsCredentials = true;
      i -= 1;
      continue;
    }
    const n = Number(value);
    if (flag === "--fleets") o.fleets = value.split(",").map(Number);
    else if (flag === "--agents") o.agents = n;
    else if (flag === "--deadline") o.deadline = n;
    else if (flag === "--initial-ms") o.initialMs = n;
    else if (flag === "--pending-ms") o.pendingMs = n;
    else if (flag === "--dump") o.dump = value;
    else if (flag === "--actions") {
      o.actions = value.split(",") as FleetAction[];
      const unknown = o.actions.filter((a) => !(fleetActions as readonly string[]).includes(a));
      if (unknown.length > 0)
        throw new Error(`--actions: unknown ${unknown.join(", ")}; one of ${fleetActions.join(", ")}`);
    } else throw new Error(`unknown option ${flag}`);
  }
  if (![o.agents, o.deadline, ...o.fleets].every((n) => Number.isInteger(n) && n > 0)) {
    throw new Error("--agents, --deadline and --fleets take positive integers");
  }
  return o;
}

const SERVICES: [AwsService, string][] = [
  ["ec2", "EC2"],
  ["elasticloadbalancing", "ELBv2"],
  ["route53", "Route 53"],
];

type Counts = Record<string, number>;

/** Calls by "service Operation" (successful or not), leaving out those the buckets refused. */
function served(calls: readonly CallRecord[]): Counts {
  const out: Counts = {};
  for (const c of calls) {
    if (c.throttled) continue;
    const key = `${c.service} ${c.operation}`;
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

const sum = (c: Counts): number => Object.values(c).reduce((a, b) => a + b, 0);
const list = (c: Counts): string =>
  Object.entries(c)
    .sort()
    .map(([k, n]) => `${k.replace(/^\S+ /, "")} ${n}`)
    .join(", ") || "none";

// ---- one agent alone: calls per action, first and second run -----------------------------------------------------

interface Solo {
  /** The full wiring's first run, by "service Operation": what one agent of the fleet needs. */
  needed: Counts;
  wallMs: number;
}

async function solo(o: Options): Promise<Solo> {
  const world = await startWorld({ route53PendingMs: o.pendingMs });
  try {
    const f = await seedFleet(world, { agents: 0, poolSize: 8, name: "solo" });
    world.proxy.elbv2.setTargetHealth({ initialMs: o.initialMs });
    const configs: [string, string][] = [
      ["elastic_ip (pool)", "elastic_ip: { pool: { tags: { Pool: solo } } }"],
      ["load_balancer (wait_healthy)", "load_balancer: { target_groups: [{ name: solo }], wait_healthy: 60 }"],
      [
        "dns (1 record)",
        `dns: { records: [{ zone: ${f.zone}, private: true, name: 'dns-{{instance.id}}.${f.zone}' }] }`,
      ],
    ];
    console.log("Calls one agent makes alone (no throttling), per action:");
    for (const [label, config] of configs) {
      const b = await boot(world, `#bootlace\n${config}\n`, { vpcId: f.vpcId });
      const runs = [];
      for (const _ of [1, 2]) {
        world.proxy.resetCalls();
        const r = await runBootlace(["run"], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });
        if (r.code !== 0) throw new Error(`${label}: exit ${r.code}\n${r.stderr}`);
        runs.push(served(world.proxy.calls));
      }
      const [first = {}, second = {}] = runs;
      console.log(
        `  ${label.padEnd(30)} first run ${sum(first)} (${list(first)}); second run ${sum(second)} (${list(second)})`,
      );
    }
    // The fleet's own configuration, on a world of its own shape.
    const one = await seedFleet(world, { agents: 1, name: "one", actions: o.actions });
    const agent = one.agents[0]!;
    const runs = [];
    let wallMs = 0;
    for (const _ of [1, 2]) {
      world.proxy.resetCalls();
      const started = Date.now();
      const r = await runBootlace(["run"], { imds: agent.imds.endpoint, aws: world.proxy.endpoint, root: agent.root });
      if (r.code !== 0) throw new Error(`full wiring: exit ${r.code}\n${r.stderr}`);
      wallMs ||= Date.now() - started;
      runs.push(served(world.proxy.calls));
    }
    const [needed = {}, again = {}] = runs;
    for (const [service, name] of SERVICES) {
      const of = (c: Counts) => Object.fromEntries(Object.entries(c).filter(([k]) => k.startsWith(`${service} `)));
      console.log(
        `  ${`fleet's wiring: ${name}`.padEnd(30)} first run ${sum(of(needed))} (${list(of(needed))}); second run ${sum(of(again))}`,
      );
    }
    console.log(
      `  ${"fleet's wiring: total".padEnd(30)} first run ${sum(needed)}, second run ${sum(again)}; ${(wallMs / 1000).toFixed(1)} s\n`,
    );
    return { needed, wallMs };
  } finally {
    await world.close();
  }
}

// ---- the fleet -----------------------------------------------------------------------------------------------------

interface FleetResult {
  modelled: number;
  agents: number;
  scale: number;
  wired: number;
  p50: number;
  p90: number;
  max: number;
  floorS: number;
  binding: string;
  fleetS: number;
  madePerAgent: number;
  throttled: number;
  collisions: number;
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

/** The time the buckets need to serve `agents` × what one agent needs, each bucket starting full. */
function bucketFloor(needed: Counts, agents: number, scale: number): { seconds: number; binding: string }[] {
  const buckets = new TokenBuckets(scale);
  const demand = new Map<string, { calls: number; burst: number; perSecond: number }>();
  for (const [key, n] of Object.entries(needed)) {
    const [service = "", operation = ""] = key.split(" ");
    for (const { name, size } of buckets.sizesOf(service as AwsService, operation)) {
      const d = demand.get(name) ?? { calls: 0, ...size };
      d.calls += n * agents;
      demand.set(name, d);
    }
  }
  return [...demand]
    .map(([name, d]) => ({
      seconds: Math.max(0, (d.calls - d.burst) / d.perSecond),
      binding: `${name}: ${d.calls} calls, burst ${+d.burst.toFixed(2)}, ${+d.perSecond.toFixed(3)}/s`,
    }))
    .sort((a, b) => b.seconds - a.seconds);
}

async function fleet(o: Options, modelled: number, need: Solo): Promise<FleetResult> {
  const scale = modelled / o.agents;
  const world: World = await startWorld({ route53PendingMs: o.pendingMs });
  try {
    const f = await seedFleet(world, { agents: o.agents, actions: o.actions });
    world.proxy.elbv2.setTargetHealth({ initialMs: o.initialMs });
    world.proxy.resetCalls();
    world.proxy.throttle(scale);
    const runs: AgentRun[] = await runFleet(f, {
      deadlineSeconds: o.deadline,
      credentials: o.imdsCredentials ? "imds" : "environment",
      hold: true,
    });
    const t0 = runs[0]?.t0 ?? Date.now();
    const calls = [...world.proxy.calls];
    const buckets = world.proxy.buckets();
    world.proxy.throttle(undefined);
    const wired = await wiredInWorld(f);

    if (o.dump !== undefined) {
      await mkdir(o.dump, { recursive: true });
      const file = join(o.dump, `fleet-${modelled}.json`);
      const dump = {
        modelled,
        scale,
        buckets,
        calls: calls.map((c) => ({ ...c, at: c.at - t0 })),
        runs: runs.map((r) => ({
          instanceId: r.agent.instance.instanceId,
          code: r.result.code,
          startedMs: r.startedMs,
          endedMs: r.endedMs,
          stderr: r.result.stderr,
        })),
      };
      await writeFile(file, JSON.stringify(dump));
    }
    // Wired: everything in the world as configured, and done within the deadline from the release.
    const inTime = new Set(runs.filter((r) => r.endedMs <= o.deadline * 1000).map((r) => r.agent.instance.instanceId));
    const ok = wired.filter((w) => w.ok && inTime.has(w.instanceId)).length;
    const firstCall = Math.min(...calls.map((c) => c.at)) - t0;
    const ends = runs.map((r) => r.endedMs / 1000).sort((a, b) => a - b);
    const fleetS = ends[ends.length - 1] ?? NaN;
    const floors = bucketFloor(need.needed, o.agents, scale);
    const floorS = Math.max(floors[0]?.seconds ?? 0, need.wallMs / 1000);
    const collisions = calls.filter(
      (c) => c.operation === "AssociateAddress" && c.code === "Resource.AlreadyAssociated",
    ).length;
    const throttled = calls.filter((c) => c.throttled).length;

    console.log(
      `Fleet of ${modelled} modelled by ${o.agents} agents (buckets ÷${+scale.toFixed(3)}), deadline ${o.deadline} s`,
    );
    console.log(
      `  agents wired within ${o.deadline} s: ${ok}/${o.agents} (exit 0: ${runs.filter((r) => r.result.code === 0).length}); ` +
        `the first AWS call ${(firstCall / 1000).toFixed(1)} s after the release`,
    );
    console.log(
      `  finish (s after the release): p50 ${percentile(ends, 50).toFixed(1)}, p90 ${percentile(ends, 90).toFixed(1)}, ` +
        `p99 ${percentile(ends, 99).toFixed(1)}, max ${fleetS.toFixed(1)}`,
    );
    console.log("  calls      made  throttled  made per agent");
    for (const [service, name] of SERVICES) {
      const of = calls.filter((c) => c.service === service);
      const t = of.filter((c) => c.throttled).length;
      console.log(
        `  ${name.padEnd(9)}${String(of.length).padStart(6)}${String(t).padStart(11)}${(of.length / o.agents).toFixed(1).padStart(16)}`,
      );
    }
    console.log(`  Elastic IP collisions (AssociateAddress refused as already associated): ${collisions}`);
    for (const b of floors.slice(0, 3)) console.log(`  floor ${b.seconds.toFixed(1).padStart(6)} s  ${b.binding}`);
    console.log(`  fleet ${fleetS.toFixed(1)} s = ${(fleetS / floorS).toFixed(2)}× the floor (${floorS.toFixed(1)} s)`);
    const failed = runs.filter((r) => r.result.code !== 0);
    for (const r of failed.slice(0, 5)) {
      const last = r.result.stderr.trim().split("\n").slice(-3).join(" | ");
      console.log(
        `  ${r.agent.instance.instanceId} exit ${r.result.code} at ${(r.endedMs / 1000).toFixed(1)} s: ${last}`,
      );
    }
    console.log("");
    return {
      modelled,
      agents: o.agents,
      scale,
      wired: ok,
      p50: percentile(ends, 50),
      p90: percentile(ends, 90),
      max: fleetS,
      floorS,
      binding: floors[0]?.binding.replace(/:.*/, "") ?? "",
      fleetS,
      madePerAgent: calls.length / o.agents,
      throttled,
      collisions,
    };
  } finally {
    await world.close();
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  console.log(
    `node ${process.version}; the fleet wires ${o.actions.join(", ")}; targets initial for ${o.initialMs} ms, ` +
      `Route 53 changes PENDING for ${o.pendingMs} ms; credentials from ` +
      `${o.imdsCredentials ? "IMDS" : "the environment"}\n`,
  );
  const need = await solo(o);
  const results: FleetResult[] = [];
  for (const modelled of o.fleets) results.push(await fleet(o, modelled, need));
  console.log(
    "| fleet modelled | agents | wired | p50 s | p90 s | max s | floor s (binding bucket) | max / floor | calls made per agent | throttled | EIP collisions |",
  );
  console.log("|---|---|---|---|---|---|---|---|---|---|---|");
  for (const r of results) {
    console.log(
      `| ${r.modelled} | ${r.agents} (÷${+r.scale.toFixed(3)}) | ${r.wired}/${r.agents} | ${r.p50.toFixed(1)} | ${r.p90.toFixed(1)} | ` +
        `${r.max.toFixed(1)} | ${r.floorS.toFixed(1)} (${r.binding}) | ${(r.fleetS / r.floorS).toFixed(2)} | ` +
        `${r.madePerAgent.toFixed(1)} | ${r.throttled} | ${r.collisions} |`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
