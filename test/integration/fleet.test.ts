// Instances booting together under AWS's throttling: the real bundle, one process per instance, against moto behind
// the fidelity proxy (injected throttling storms, or AWS's token buckets scaled down to a few agents).
import { DescribeAddressesCommand } from "@aws-sdk/client-ec2";
import { preferenceOrder } from "../../agent/actions/elastic-ip";
import type { CallRecord } from "../harness/aws-proxy";
import { runFleet, seedFleet, wiredInWorld, type AgentRun, type FleetWorld } from "../harness/fleet";
import { stateOf } from "../harness/booted";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(240_000);

let world: World;

/**
 * The storm takes about a minute of real waiting (nine full-jitter waits below 1, 2, 4, 8, 16 and then 20 s), so it
 * runs in a world of its own from the start, while the other tests run, and is checked last.
 */
interface Storm {
  world: World;
  f: FleetWorld;
  run: AgentRun;
  associations: CallRecord[];
}
let storm: Promise<Storm>;

beforeAll(async () => {
  storm = (async () => {
    const w = await startWorld();
    const f = await seedFleet(w, { agents: 1, name: "storm", actions: ["elastic_ip", "dns"] });
    // Nine refusals: the SDK strategy the agent used before gave up after eight attempts.
    w.proxy.inject({ service: "ec2", operation: "AssociateAddress", kind: "throttle", times: 9 });
    const [run] = await runFleet(f, { deadlineSeconds: 200, spreadMs: 0 });
    return { world: w, f, run: run!, associations: w.proxy.calls.filter((c) => c.operation === "AssociateAddress") };
  })();
  // Awaited by its test; until then a failure must not count as unhandled.
  storm.catch(() => undefined);
  world = await startWorld();
});

afterAll(async () => {
  await world?.close();
  await (await storm.catch(() => undefined))?.world.close();
});

afterEach(() => {
  world.proxy.clearFaults();
  world.proxy.throttle(undefined);
  world.proxy.ec2.reset();
});

const of = (operation: string): CallRecord[] => world.proxy.calls.filter((c) => c.operation === operation);

describe("patience to the deadline", () => {
  it("a run never retries past the deadline: an endless storm fails the action in time", async () => {
    const deadlineSeconds = 15;
    const f = await seedFleet(world, { agents: 1, name: "endless", actions: ["elastic_ip"] });
    world.proxy.inject({ service: "ec2", operation: "DescribeAddresses", kind: "throttle", times: 1_000_000 });
    world.proxy.resetCalls();

    const [run] = await runFleet(f, { deadlineSeconds, spreadMs: 0, args: ["--log-format", "json"] });

    expect(run!.result.code).toBe(1);
    const state = await stateOf(f.agents[0]!);
    expect(state.run.failed).toEqual(["elastic_ip"]);
    expect(state.run.actions.elastic_ip?.error).toMatch(/DescribeAddresses pool Pool=endless: RequestLimitExceeded/);
    // The deadline starts before the agent's first log line, so it ends at the latest deadlineSeconds after it.
    const firstLine = JSON.parse(run!.result.stderr.split("\n")[0]!) as { time: string };
    const latestDeadline = Date.parse(firstLine.time) + deadlineSeconds * 1000;
    const attempts = of("DescribeAddresses");
    expect(attempts.length).toBeGreaterThan(3);
    expect(attempts.every((c) => c.injected === "throttle")).toBe(true);
    expect(attempts.filter((c) => c.at > latestDeadline)).toEqual([]);
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});

describe("claims without a herd", () => {
  it("two agents on a pool of two collide only when their own orders start at the same address, and then once", async () => {
    let predicted = 0;
    let collisions = 0;
    for (let pair = 0; pair < 5; pair++) {
      const f = await seedFleet(world, { agents: 2, name: `pair${pair}`, actions: ["elastic_ip"] });
      const pool = await world.ec2.send(
        new DescribeAddressesCommand({ Filters: [{ Name: "tag:Pool", Values: [f.pool] }] }),
      );
      const firsts = f.agents.map((a) => preferenceOrder(pool.Addresses!, a.instance.instanceId)[0]!.AllocationId);
      const same = firsts[0] === firsts[1];
      if (same) predicted += 1;
      // Both have read the pool before either associates: the race of instances booting together.
      world.proxy.ec2.holdAssociations(2);
      world.proxy.resetCalls();

      const runs = await runFleet(f, { deadlineSeconds: 60, spreadMs: 0 });

      expect(runs.map((r) => r.result.code)).toEqual([0, 0]);
      const wired = await wiredInWorld(f);
      expect(wired.every((w) => w.ok)).toBe(true);
      expect(new Set(wired.map((w) => w.address)).size).toBe(2);
      const refused = of("AssociateAddress").filter((c) => c.code === "Resource.AlreadyAssociated").length;
      collisions += refused;
      // A collision costs the loser one refused AssociateAddress and one re-read of the pool; nothing else.
      expect(refused).toBe(same ? 1 : 0);
      expect(of("AssociateAddress")).toHaveLength(2 + refused);
      expect(of("DescribeAddresses")).toHaveLength(2 + refused);
    }
    // Counted: with two addresses, two instance-derived orders start at the same one about every other time.
    expect(collisions).toBe(predicted);
  });
});

describe("a fleet booting at once", () => {
  it("five agents against AWS's buckets scaled down by 5 (a fleet of 25): every one wired", async () => {
    const f = await seedFleet(world, { agents: 5, name: "small" });
    world.proxy.resetCalls();
    world.proxy.throttle(5);

    const runs = await runFleet(f, { deadlineSeconds: 120 });

    world.proxy.throttle(undefined);
    expect(runs.map((r) => r.result.code)).toEqual([0, 0, 0, 0, 0]);
    const wired = await wiredInWorld(f);
    expect(wired.filter((w) => !w.ok)).toEqual([]);
    expect(new Set(wired.map((w) => w.address)).size).toBe(5);
    // The buckets did refuse calls: the agents were wired through throttling, not around it.
    expect(world.proxy.calls.filter((c) => c.throttled).length).toBeGreaterThan(0);
  });
});

describe("patience to the deadline, in a storm", () => {
  it("a throttling storm longer than 8 attempts' worth still converges within the deadline", async () => {
    const { f, run, associations } = await storm;

    expect(run.result.code).toBe(0);
    expect(associations.map((c) => c.status)).toEqual([...Array<number>(9).fill(503), 200]);
    const [wired] = await wiredInWorld(f);
    expect(wired).toMatchObject({ ok: true, record: [wired!.address] });
  });
});
