// Leaving, end to end: `bootlace watch` (the real bundle) reads the spot notice and the Auto Scaling lifecycle state
// from the IMDS emulator and takes the one stop path — deregistered and drained within what the notice leaves,
// records gone, the termination hook given heartbeats and CONTINUE — and the shutdown's `bootlace stop` then finds
// the work done. Also the running warm pool: `watch` wires the instance at the reading that sees InService.
import type { ChildProcess } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DescribeTargetHealthCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { boot as bootInWorld, type Booted } from "../harness/booted";
import { runBootlace, type RunResult } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { TEST_CREDENTIALS, startWorld } from "../harness/world";
import type { AutoScalingWorld, HookSpec } from "../harness/world-autoscaling";
import { autoScalingWorld } from "../harness/world-autoscaling";
import { recordFigure } from "../support/figures";

jest.setTimeout(180_000);

let world: World;
let asg: AutoScalingWorld;
let vpcId: string;
let subnetId: string;
let zoneId: string;
let seq = 0;
/** Reads target health through the proxy: moto forgets a target at once, the proxy knows it drains. */
let elbv2: ElasticLoadBalancingV2Client;

beforeAll(async () => {
  world = await startWorld();
  asg = autoScalingWorld(world);
  elbv2 = new ElasticLoadBalancingV2Client({
    endpoint: world.proxy.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
  });
  ({ vpcId, subnetId } = await world.createVpc("10.61.0.0/16"));
  zoneId = await world.createHostedZone("leave.internal", { privateVpcId: vpcId });
});

afterAll(async () => {
  elbv2?.destroy();
  asg?.close();
  await world?.close();
});

/** Watchers still running (a test that failed before stopping its own). */
const live = new Set<() => Promise<RunResult>>();

afterEach(async () => {
  await Promise.all([...live].map((stop) => stop()));
  world.proxy.elbv2.reset();
  world.proxy.autoscaling.reset();
});

interface Left {
  reason: string;
  act_by?: string;
  started: string;
  finished: string;
  exit_code: number;
  termination_hook?: { result?: string; heartbeats: number }[];
}

interface StateSeen {
  stop?: { actions: Record<string, { changes: { kind: string; detail?: string }[] }> };
  lifecycle?: { phase: string; by: string; at: string; launch_hook?: { result?: string }[] };
  left?: Left;
}

const statePath = (b: Booted) => join(b.root, "var/lib/bootlace/state.json");
const stateOf = async (b: Booted): Promise<StateSeen> => JSON.parse(await readFile(statePath(b), "utf8")) as StateSeen;

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** A target group and an instance wired into it and into a record, with this configuration around it. */
async function wired(
  extra: Record<string, unknown>,
  imds: { instanceLifeCycle?: "spot"; lifecycleState?: string } = {},
): Promise<{ b: Booted; tg: string; name: string }> {
  const name = `leave-${++seq}`;
  const tg = await world.createTargetGroup({ name, vpcId, port: 80 });
  const config = {
    load_balancer: { target_groups: [{ name }], wait_healthy: 0 },
    dns: { records: [{ zone: "leave.internal", name: `${name}.leave.internal`, delete_on_shutdown: true }] },
    watch: { interval: 60, notice_interval: 1 },
    ...extra,
  };
  const b = await bootInWorld(world, `#bootlace\n${JSON.stringify(config)}\n`, { vpcId, tags: { Role: "web" } });
  b.imds.update(imds);
  await writeFile(join(b.root, "etc/hosts"), "127.0.0.1 localhost\n");
  return { b, tg, name };
}

const run = (args: string[], b: Booted, o: { onSpawn?: (c: ChildProcess) => void } = {}): Promise<RunResult> =>
  runBootlace(args, {
    imds: b.imds.endpoint,
    aws: world.proxy.endpoint,
    root: b.root,
    timeoutMs: 120_000,
    ...(o.onSpawn && { onSpawn: o.onSpawn }),
  });

/** `bootlace watch` in the background, once it has read the path given at least once. */
async function watching(b: Booted, path: string): Promise<{ stop(): Promise<RunResult> }> {
  let child: ChildProcess | undefined;
  const done = run(["watch"], b, { onSpawn: (c) => (child = c) });
  await until(`watch reads ${path}`, () =>
    Promise.resolve(b.imds.requests.some((r) => r.path === `/latest/${path}`) || undefined),
  );
  const stop = async (): Promise<RunResult> => {
    live.delete(stop);
    child?.kill("SIGTERM");
    return done;
  };
  live.add(stop);
  return { stop };
}

async function targets(tg: string): Promise<{ id: string; state: string }[]> {
  const out = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg }));
  return (out.TargetHealthDescriptions ?? []).map((d) => ({
    id: d.Target?.Id ?? "",
    state: d.TargetHealth?.State ?? "",
  }));
}

const recordNames = async (): Promise<string[]> =>
  (await world.listRecords(zoneId)).filter((r) => r.type === "A").map((r) => r.name);

const ops = (): string[] => world.proxy.calls.map((c) => c.operation);

describe("a spot interruption notice", () => {
  it("deregisters and drains the target and deletes the records before the notice's time; the shutdown does not repeat it", async () => {
    const { b, tg, name } = await wired({}, { instanceLifeCycle: "spot" });
    world.proxy.elbv2.setDrainMs(3000, tg);
    expect((await run(["run"], b)).code).toBe(0);
    expect(await recordNames()).toContain(`${name}.leave.internal.`);
    const watch = await watching(b, "meta-data/spot/instance-action");

    // Scaled time: the notice gives 30 s instead of two minutes.
    const noticed = Date.now();
    b.imds.update({ spotAction: { action: "terminate", time: new Date(noticed + 30_000).toISOString() } });
    const left = await until("the stop path ran", async () => (await stateOf(b)).left);

    expect(left).toMatchObject({ reason: "spot-interruption", exit_code: 0 });
    expect(Date.parse(left.finished)).toBeLessThanOrEqual(Date.parse(left.act_by!));
    expect(await targets(tg)).toEqual([]);
    expect(await recordNames()).not.toContain(`${name}.leave.internal.`);
    const stop = (await stateOf(b)).stop!;
    expect(stop.actions.load_balancer!.changes[0]!.detail).toMatch(/drained in \d+ s/);
    recordFigure("spot notice → deregistered, drained (3 s drain), records gone", Date.parse(left.finished) - noticed);

    const stopped = await watch.stop();
    expect(stopped.code).toBe(0);
    world.proxy.resetCalls();
    const shutdown = await run(["stop", "--json"], b);
    expect(shutdown.code).toBe(0);
    expect(shutdown.json).toMatchObject({ changes: 0, already_done: { reason: "spot-interruption" } });
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });

  it("stops waiting for the drain when the notice's time comes: deregistered and records gone in time", async () => {
    const { b, tg, name } = await wired({}, { instanceLifeCycle: "spot" });
    world.proxy.elbv2.setDrainMs(120_000, tg);
    expect((await run(["run"], b)).code).toBe(0);
    const watch = await watching(b, "meta-data/spot/instance-action");

    b.imds.update({ spotAction: { action: "stop", time: new Date(Date.now() + 12_000).toISOString() } });
    const left = await until("the stop path ran", async () => (await stateOf(b)).left);
    await watch.stop();

    expect(left).toMatchObject({ reason: "spot-interruption", exit_code: 0 });
    expect(Date.parse(left.finished)).toBeLessThanOrEqual(Date.parse(left.act_by!));
    expect(await targets(tg)).toEqual([{ id: b.instance.instanceId, state: "draining" }]);
    expect(await recordNames()).not.toContain(`${name}.leave.internal.`);
    expect((await stateOf(b)).stop!.actions.load_balancer!.changes[0]!.detail).toMatch(/still draining after/);
  });
});

describe("an Auto Scaling termination", () => {
  it("gives the termination hook heartbeats while the target drains, then CONTINUE", async () => {
    const group = `leaving-${++seq}`;
    await asg.createGroup(group, subnetId);
    // The drain outlasts the hook's heartbeat timeout: without heartbeats the hook would end with its default result.
    const hook: HookSpec = { group, name: "drain", transition: "terminate", heartbeatTimeout: 6 };
    await asg.putHook(hook);
    const { b, tg, name } = await wired({ autoscaling: {} }, { lifecycleState: "InService" });
    await asg.attach(group, b.instance.instanceId);
    world.proxy.elbv2.setDrainMs(10_000, tg);
    expect((await run(["run"], b)).code).toBe(0);
    const watch = await watching(b, "meta-data/autoscaling/target-lifecycle-state");
    world.proxy.resetCalls();

    const noticed = Date.now();
    asg.open(hook, b.instance.instanceId);
    b.imds.update({ lifecycleState: "Terminated" });
    const left = await until("the stop path ran", async () => (await stateOf(b)).left);
    await watch.stop();

    expect(left).toMatchObject({ reason: "termination", exit_code: 0, termination_hook: [{ result: "CONTINUE" }] });
    expect(world.proxy.autoscaling.results).toEqual([
      expect.objectContaining({ hook: "drain", result: "CONTINUE", how: "completed", state: "Terminated" }),
    ]);
    const calls = ops();
    const deregistered = calls.indexOf("DeregisterTargets");
    const completed = calls.indexOf("CompleteLifecycleAction");
    const beats = calls.flatMap((c, i) => (c === "RecordLifecycleActionHeartbeat" ? [i] : []));
    expect(beats.some((i) => i > deregistered && i < completed)).toBe(true);
    expect(await targets(tg)).toEqual([]);
    expect(await recordNames()).not.toContain(`${name}.leave.internal.`);
    recordFigure("termination (Terminated) → drained (10 s drain) and CONTINUE", Date.parse(left.finished) - noticed);
  });
});

describe("a running warm pool", () => {
  it("prepared while Warmed:Running, wired by the watch reading that sees InService, launch hook completed", async () => {
    const group = `running-${++seq}`;
    await asg.createGroup(group, subnetId);
    const hook: HookSpec = { group, name: "launch", transition: "launch", heartbeatTimeout: 60 };
    await asg.putHook(hook);
    const { b, tg, name } = await wired({ autoscaling: {} }, { lifecycleState: "Warmed:Running" });
    await asg.attach(group, b.instance.instanceId);
    expect((await run(["run"], b)).code).toBe(0);
    expect((await stateOf(b)).lifecycle).toMatchObject({ phase: "prepared" });
    expect(await targets(tg)).toEqual([]);
    const watch = await watching(b, "meta-data/autoscaling/target-lifecycle-state");

    const inService = Date.now();
    asg.open(hook, b.instance.instanceId);
    b.imds.update({ lifecycleState: "InService" });
    const lifecycle = await until("wired by watch", async () => {
      const l = (await stateOf(b)).lifecycle;
      return l?.phase === "wired" ? l : undefined;
    });
    await watch.stop();

    expect(lifecycle).toMatchObject({ phase: "wired", by: "watch", launch_hook: [{ result: "CONTINUE" }] });
    expect(await targets(tg)).toEqual([{ id: b.instance.instanceId, state: "healthy" }]);
    expect(await recordNames()).toContain(`${name}.leave.internal.`);
    recordFigure("warm pool, running: InService → wired by watch", Date.parse(lifecycle.at) - inService);
  });
});
