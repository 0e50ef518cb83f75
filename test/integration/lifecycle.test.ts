// The Auto Scaling lifecycle at boot, end to end: the real bundle, IMDS from the emulator (the target lifecycle state),
// moto behind the fidelity proxy (which runs the lifecycle actions moto lacks). Warm pools (prepared while Warmed,
// wired at InService), the launch hook (CONTINUE after healthy and INSYNC, ABANDON when an action fails, heartbeats,
// the retry of "No active Lifecycle Action found"), and the Elastic IP handoff from a leaving instance.
import { AssociateAddressCommand, DescribeAddressesCommand, DisassociateAddressCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { boot as bootInWorld, type Booted } from "../harness/booted";
import { runBootlace, type RunResult } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";
import type { AutoScalingWorld, HookSpec } from "../harness/world-autoscaling";
import { autoScalingWorld } from "../harness/world-autoscaling";
import { recordFigure } from "../support/figures";

jest.setTimeout(180_000);

let world: World;
let asg: AutoScalingWorld;
let vpcId: string;
let subnetId: string;
let zoneId: string;
let tg: string;
let groups = 0;

beforeAll(async () => {
  world = await startWorld({ route53PendingMs: 1500 });
  asg = autoScalingWorld(world);
  ({ vpcId, subnetId } = await world.createVpc("10.60.0.0/16"));
  zoneId = await world.createHostedZone("fleet.internal", { privateVpcId: vpcId });
  tg = await world.createTargetGroup({ name: "fleet", vpcId, port: 80 });
});

afterAll(async () => {
  asg?.close();
  await world?.close();
});

afterEach(() => {
  world.proxy.elbv2.reset();
  world.proxy.autoscaling.reset();
});

/** A fresh group with a launch hook, and an instance of it booted with this configuration. */
async function member(
  config: Record<string, unknown>,
  o: { lifecycleState?: string; hook?: Partial<HookSpec> } = {},
): Promise<{ b: Booted; group: string; hook: HookSpec }> {
  const group = `fleet-${++groups}`;
  await asg.createGroup(group, subnetId);
  const hook: HookSpec = { group, name: "launch", transition: "launch", heartbeatTimeout: 30, ...o.hook };
  await asg.putHook(hook);
  const b = await bootInWorld(world, `#bootlace\n${JSON.stringify(config)}\n`, { vpcId, tags: { Role: "web" } });
  await asg.attach(group, b.instance.instanceId);
  b.imds.update({ lifecycleState: o.lifecycleState ?? "InService" });
  await writeFile(join(b.root, "etc/hosts"), "127.0.0.1 localhost\n");
  await mkdir(join(b.root, "etc/app"), { recursive: true });
  return { b, group, hook };
}

const run = (command: string, b: Booted): Promise<RunResult> =>
  runBootlace([command, "--json"], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });

interface StateSeen {
  run?: { exit_code: number; failed: string[] };
  lifecycle?: {
    phase: string;
    target_state?: string;
    by: string;
    at: string;
    deferred_files?: string[];
    launch_hook?: { hook: string; result?: string; heartbeats: number; attempts: number; error?: string }[];
  };
  saved: Record<string, unknown>;
}

const stateOf = async (b: Booted): Promise<StateSeen> =>
  JSON.parse(await readFile(join(b.root, "var/lib/bootlace/state.json"), "utf8")) as StateSeen;

async function holderOf(allocationId: string): Promise<string | undefined> {
  const out = await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
  const a = out.Addresses?.[0];
  return a?.NetworkInterfaceId || a?.InstanceId || undefined;
}

async function registered(instanceId: string): Promise<boolean> {
  const out = await world.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg }));
  return (out.TargetHealthDescriptions ?? []).some((d) => d.Target?.Id === instanceId);
}

const recordNames = async (): Promise<string[]> =>
  (await world.listRecords(zoneId)).filter((r) => r.type === "A").map((r) => r.name);

const ops = (): string[] => world.proxy.calls.map((c) => c.operation);

/** Everything bootlace wires, and two files: one that prepares (no peers, no addresses) and one that needs peers. */
function wiringConfig(pool: string, name: string): Record<string, unknown> {
  return {
    autoscaling: {},
    elastic_ip: { pool: { tags: { Pool: pool } } },
    load_balancer: { target_groups: [{ name: "fleet" }], wait_healthy: 30 },
    dns: { records: [{ zone: "fleet.internal", name: `${name}.fleet.internal`, delete_on_shutdown: true }] },
    peers: { db: { tags: { Role: "db" } } },
    files: [
      { path: "/etc/app/node.conf", block: "id={{instance.id}}\nip={{instance.private_ipv4}}\n" },
      { path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db.internal\n{{/peers.db}}" },
    ],
  };
}

describe("a warm pool", () => {
  it("prepares the instance while Warmed:Stopped and wires everything at InService, completing the launch hook each time", async () => {
    const db = await world.launchInstance({ vpcId, tags: { Role: "db" } });
    const eip = await world.allocateAddress({ Pool: "warm-1" });
    const { b, hook } = await member(wiringConfig("warm-1", "warm-1"), { lifecycleState: "Warmed:Stopped" });
    // Launched into the warm pool: the hook holds it in Warmed:Pending:Wait until bootlace prepared it.
    asg.open(hook, b.instance.instanceId, { warmedTo: "Warmed:Stopped" });

    const parked = await run("run", b);

    expect(parked.code).toBe(0);
    expect(await holderOf(eip.allocationId)).toBeUndefined();
    expect(await registered(b.instance.instanceId)).toBe(false);
    expect(await recordNames()).not.toContain("warm-1.fleet.internal.");
    expect(await readFile(join(b.root, "etc/app/node.conf"), "utf8")).toContain(`id=${b.instance.instanceId}`);
    expect(await readFile(join(b.root, "etc/hosts"), "utf8")).not.toContain("db.internal");
    const prepared = await stateOf(b);
    expect(prepared.lifecycle).toMatchObject({
      phase: "prepared",
      target_state: "Warmed:Stopped",
      by: "run",
      deferred_files: ["/etc/hosts"],
      launch_hook: [{ hook: "launch", result: "CONTINUE" }],
    });
    expect(world.proxy.autoscaling.results).toEqual([
      expect.objectContaining({ hook: "launch", result: "CONTINUE", how: "completed", state: "Warmed:Stopped" }),
    ]);
    const status = await runBootlace(["status"], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });
    expect(status.stdout).toContain("phase: prepared (Warmed:Stopped) by run");

    // The group needs it: it boots again, and the hook holds it in Pending:Wait until bootlace wired it.
    b.imds.update({ lifecycleState: "InService" });
    asg.open(hook, b.instance.instanceId);
    const inService = Date.now();
    const wired = await run("run", b);

    expect(wired.code).toBe(0);
    expect(await holderOf(eip.allocationId)).toBe(b.instance.interfaceId);
    expect(await registered(b.instance.instanceId)).toBe(true);
    expect(await recordNames()).toContain("warm-1.fleet.internal.");
    expect(await readFile(join(b.root, "etc/hosts"), "utf8")).toContain(`${db.privateIpv4} db.internal`);
    const state = await stateOf(b);
    expect(state.lifecycle).toMatchObject({ phase: "wired", target_state: "InService", by: "run" });
    expect(world.proxy.autoscaling.results[1]).toMatchObject({
      result: "CONTINUE",
      how: "completed",
      state: "InService",
    });
    recordFigure(
      "warm pool, stopped: InService (boot) → wired, run included",
      Date.parse(state.lifecycle!.at) - inService,
    );
  });
});

describe("the launch hook", () => {
  it("completes CONTINUE only after the target is healthy and the record INSYNC, with heartbeats meanwhile", async () => {
    await world.allocateAddress({ Pool: "hook-1" });
    // A 6 s heartbeat timeout against a wiring that takes longer: without heartbeats the hook would ABANDON it.
    const { b, hook } = await member(wiringConfig("hook-1", "hook-1"), { hook: { heartbeatTimeout: 6 } });
    await world.launchInstance({ vpcId, tags: { Role: "db" } });
    world.proxy.elbv2.setTargetHealth({ targetId: b.instance.instanceId, initialMs: 9000 });
    asg.open(hook, b.instance.instanceId);
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(0);
    const calls = ops();
    const completed = calls.indexOf("CompleteLifecycleAction");
    expect(completed).toBeGreaterThan(calls.lastIndexOf("DescribeTargetHealth"));
    expect(completed).toBeGreaterThan(calls.lastIndexOf("GetChange"));
    expect(calls.filter((c) => c === "CompleteLifecycleAction")).toHaveLength(1);
    expect(world.proxy.autoscaling.heartbeats.length).toBeGreaterThan(0);
    expect(world.proxy.autoscaling.results).toEqual([
      expect.objectContaining({ hook: "launch", result: "CONTINUE", how: "completed", state: "InService" }),
    ]);
    const state = await stateOf(b);
    expect(state.lifecycle?.launch_hook?.[0]).toMatchObject({ result: "CONTINUE" });
    expect(state.lifecycle!.launch_hook![0]!.heartbeats).toBeGreaterThan(0);
  });

  it("retries 'No active Lifecycle Action found' while the action is not open yet, then completes it", async () => {
    const { b, hook } = await member({ autoscaling: {}, files: [{ path: "/etc/app/x.conf", block: "x\n" }] });
    asg.open(hook, b.instance.instanceId, { opensAfterMs: 2500 });

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(world.proxy.autoscaling.noActiveAnswers).toBeGreaterThan(0);
    expect(world.proxy.autoscaling.results).toEqual([
      expect.objectContaining({ result: "CONTINUE", how: "completed" }),
    ]);
    expect((await stateOf(b)).lifecycle!.launch_hook![0]!.attempts).toBeGreaterThan(1);
  });

  it("ABANDONs when an action failed: an address held by an InService member of the group is not taken", async () => {
    const { allocationId } = await world.allocateAddress({ Pool: "held-1" });
    const { b, hook, group } = await member({ autoscaling: {}, elastic_ip: { allocation_id: allocationId } });
    const holder = await world.launchInstance({ vpcId });
    await asg.attach(group, holder.instanceId);
    await world.ec2.send(new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: holder.instanceId }));
    asg.open(hook, b.instance.instanceId);
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain("allow_reassociation: true");
    expect(ops()).not.toContain("AssociateAddress");
    expect(await holderOf(allocationId)).toBe(holder.interfaceId);
    expect(world.proxy.autoscaling.results).toEqual([
      expect.objectContaining({ result: "ABANDON", how: "completed", state: "Terminating" }),
    ]);
    expect((await stateOf(b)).lifecycle!.launch_hook![0]).toMatchObject({ result: "ABANDON" });
  });
});

describe("the Elastic IP handoff", () => {
  /** by: how the old instance holds it (bootlace associates by interface; EC2 then names the instance too). */
  async function heldByLeaving(handoff: number, by: "interface" | "instance") {
    const { allocationId } = await world.allocateAddress({ Pool: `handoff-${handoff}` });
    const { b, group } = await member({ autoscaling: {}, elastic_ip: { allocation_id: allocationId, handoff } });
    const old = await world.launchInstance({ vpcId });
    await asg.attach(group, old.instanceId);
    await world.ec2.send(
      new AssociateAddressCommand({
        AllocationId: allocationId,
        ...(by === "interface" ? { NetworkInterfaceId: old.interfaceId } : { InstanceId: old.instanceId }),
      }),
    );
    // The old instance is leaving: its termination hook holds it while it drains.
    asg.open({ group, name: "drain", transition: "terminate", heartbeatTimeout: 600 }, old.instanceId);
    return { allocationId, b, old };
  }

  it("waits for an address held by an instance that is leaving and claims it once released", async () => {
    const { allocationId, b } = await heldByLeaving(60, "interface");
    world.proxy.resetCalls();
    const started = Date.now();
    // The old instance terminates a few seconds later; EC2 disassociates its address.
    const release = new Promise<number>((resolve) =>
      setTimeout(() => {
        void world.ec2
          .send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }))
          .then((out) =>
            world.ec2.send(new DisassociateAddressCommand({ AssociationId: out.Addresses![0]!.AssociationId! })),
          )
          .then(() => resolve(Date.now()));
      }, 3000),
    );

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(await holderOf(allocationId)).toBe(b.instance.interfaceId);
    const calls = ops();
    // Read again and again while held, and associated once, after the release.
    expect(calls.filter((c) => c === "DescribeAddresses").length).toBeGreaterThan(2);
    expect(calls.filter((c) => c === "AssociateAddress")).toHaveLength(1);
    expect(result.stderr).toMatch(/released after \d+ s; claiming/);
    const released = await release;
    const finished = Date.parse((await stateOf(b)).lifecycle!.at);
    recordFigure("Elastic IP handoff: released → claimed (run)", finished - released);
    recordFigure("Elastic IP handoff: run start → claimed (holder released after 3 s)", finished - started);
  });

  it("takes the address from a leaving instance that still holds it when the handoff time is up", async () => {
    const { allocationId, b, old } = await heldByLeaving(3, "instance");

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(await holderOf(allocationId)).toBe(b.instance.interfaceId);
    expect(result.stderr).toContain(`still held by ${old.instanceId}`);
  });
});
