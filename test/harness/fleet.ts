// A fleet booting at once: N instances in one world, each with its own IMDS and root, every agent a separate process
// running dist/bootlace.js, all started within a second; then what the world says about each (its pool address, its
// target registration, its record). Shared by the fleet test and `npm run bench:fleet`.
import { DescribeAddressesCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { boot, type Booted } from "./booted";
import { runBootlace, type RunResult } from "./run-bundle";
import { TEST_CREDENTIALS, type World } from "./world";

export interface FleetWorld {
  world: World;
  vpcId: string;
  zoneId: string;
  zone: string;
  targetGroupArn: string;
  pool: string;
  /** The actions each agent's user-data configures. */
  actions: FleetAction[];
  agents: Booted[];
}

export const fleetActions = ["elastic_ip", "load_balancer", "dns"] as const;
export type FleetAction = (typeof fleetActions)[number];

/**
 * A VPC, a private zone, a target group, a pool of `size` addresses (default: one per agent) and `agents` instances
 * whose user-data claims from the pool, registers in the group and publishes web-<instance id>.<zone> → the address.
 */
export async function seedFleet(
  world: World,
  o: { agents: number; poolSize?: number; name?: string; waitHealthy?: number; actions?: readonly FleetAction[] },
): Promise<FleetWorld> {
  const actions = new Set(o.actions ?? fleetActions);
  const name = o.name ?? "fleet";
  const { vpcId } = await world.createVpc("10.60.0.0/16");
  const zone = `${name}.internal`;
  const zoneId = await world.createHostedZone(zone, { privateVpcId: vpcId });
  const targetGroupArn = await world.createTargetGroup({ name, vpcId });
  for (let i = 0; i < (o.poolSize ?? o.agents); i++) await world.allocateAddress({ Pool: name });
  const value = actions.has("elastic_ip") ? "elastic_ip" : "private_ipv4";
  const userData = [
    "#bootlace",
    actions.has("elastic_ip") && `elastic_ip: { pool: { tags: { Pool: ${name} } } }`,
    actions.has("load_balancer") &&
      `load_balancer: { target_groups: [{ name: ${name} }], wait_healthy: ${o.waitHealthy ?? 60} }`,
    actions.has("dns") &&
      `dns: { records: [{ zone: ${zone}, private: true, name: 'web-{{instance.id}}.${zone}', value: ${value} }] }`,
  ]
    .filter((line) => line !== false)
    .join("\n");
  const agents: Booted[] = [];
  for (let i = 0; i < o.agents; i++) agents.push(await boot(world, userData, { vpcId }));
  return { world, vpcId, zoneId, zone, targetGroupArn, pool: name, actions: [...actions], agents };
}

export interface AgentRun {
  agent: Booted;
  result: RunResult;
  /** The fleet's start (epoch ms): the first spawn, or the release of held agents. */
  t0: number;
  /** ms after the fleet's start (negative for held agents, spawned before it). */
  startedMs: number;
  endedMs: number;
}

export interface FleetRunOptions {
  deadlineSeconds: number;
  /** Each agent starts at a random moment within this of the first (default 1 s). */
  spreadMs?: number;
  args?: string[];
  /** From each instance's IMDS, as on EC2 (default), or from the environment (see below). */
  credentials?: "imds" | "environment";
  /**
   * Start every process first, with its IMDS answering 503, and let them all go at once when each is waiting: the
   * start of Node and the bundle is then not part of the fleet's time (see below). A held agent's own --deadline is
   * longer by the most the hold may take; whether it finished within deadlineSeconds of the release is endedMs.
   */
  hold?: boolean;
}

/**
 * `bootlace run` on every agent, all through the world's proxy. Resolves when every process has exited; times are
 * from the fleet's start: the first spawn, or the release when held.
 *
 * Dozens of agents starting at once on a machine of two cores are starved of CPU — tens of seconds before the first
 * AWS call, long enough for the SDK's instance-profile provider (2 s timeouts) to give up — which no instance with a
 * CPU of its own would see. The fleet benchmark, which measures AWS's throttling, holds its agents and gives them
 * credentials in the environment.
 */
export async function runFleet(f: FleetWorld, o: FleetRunOptions): Promise<AgentRun[]> {
  const spawned = Date.now();
  let t0 = spawned;
  if (o.hold) for (const a of f.agents) a.imds.setUnavailable(true);
  const spread = o.spreadMs ?? 1000;
  const runs = f.agents.map(async (agent): Promise<AgentRun> => {
    if (!o.hold) await new Promise((r) => setTimeout(r, Math.random() * spread));
    const startedMs = Date.now() - spawned;
    const deadline = o.deadlineSeconds + (o.hold ? HOLD_LIMIT_MS / 1000 : 0);
    const result = await runBootlace(["run", "--deadline", String(deadline), ...(o.args ?? [])], {
      imds: agent.imds.endpoint,
      aws: f.world.proxy.endpoint,
      root: agent.root,
      timeoutMs: (deadline + 60) * 1000,
      ...(o.credentials === "environment" && {
        env: {
          AWS_ACCESS_KEY_ID: TEST_CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: TEST_CREDENTIALS.secretAccessKey,
        },
      }),
    });
    return { agent, result, t0, startedMs: startedMs - (t0 - spawned), endedMs: Date.now() - t0 };
  });
  if (o.hold) {
    // Every agent has asked its IMDS at least once: all are up and waiting.
    const limit = Date.now() + HOLD_LIMIT_MS;
    while (f.agents.some((a) => a.imds.requests.length === 0) && Date.now() < limit) {
      await new Promise((r) => setTimeout(r, 100));
    }
    t0 = Date.now();
    for (const a of f.agents) a.imds.setUnavailable(false);
  }
  return Promise.all(runs);
}

/** How long held agents may take to start, at most. */
const HOLD_LIMIT_MS = 120_000;

export interface Wired {
  instanceId: string;
  /** The pool address on this instance's interface, if any. */
  address?: string;
  registered: boolean;
  /** The record's values. */
  record?: string[];
  /** Everything its configuration asks for: address on the instance, target registered, record naming the address. */
  ok: boolean;
}

/** What the world holds for each agent, read from moto directly (none of it shows in the proxy's records). */
export async function wiredInWorld(f: FleetWorld): Promise<Wired[]> {
  const { world } = f;
  const addresses = await world.ec2.send(
    new DescribeAddressesCommand({ Filters: [{ Name: `tag:Pool`, Values: [f.pool] }] }),
  );
  const health = await world.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: f.targetGroupArn }));
  const registered = new Set((health.TargetHealthDescriptions ?? []).map((d) => d.Target?.Id));
  const records = new Map(
    (await world.listRecords(f.zoneId)).filter((r) => r.type === "A").map((r) => [r.name, r.values]),
  );
  return f.agents.map(({ instance }) => {
    const address = (addresses.Addresses ?? []).find((a) => a.NetworkInterfaceId === instance.interfaceId)?.PublicIp;
    const record = records.get(`web-${instance.instanceId}.${f.zone}.`);
    const isRegistered = registered.has(instance.instanceId);
    const has = (a: FleetAction) => f.actions.includes(a);
    const expected = has("elastic_ip") ? address : instance.privateIpv4;
    return {
      instanceId: instance.instanceId,
      ...(address !== undefined && { address }),
      registered: isRegistered,
      ...(record !== undefined && { record }),
      ok:
        (!has("elastic_ip") || address !== undefined) &&
        (!has("load_balancer") || isRegistered) &&
        (!has("dns") || (record?.length === 1 && record[0] === expected)),
    };
  });
}
