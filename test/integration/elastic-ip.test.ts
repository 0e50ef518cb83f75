// Elastic IP end to end: the real bundle, IMDS from the emulator, EC2 from moto behind the fidelity proxy (which
// refuses what AWS refuses and stages the races of instances booting together).
import { AssociateAddressCommand, DescribeAddressesCommand, type Address } from "@aws-sdk/client-ec2";
import { boot as bootInWorld, runOn, stateOf, type Booted } from "../harness/booted";
import type { RunResult } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let vpcId: string;
let zoneId: string;
let pools = 0;

beforeAll(async () => {
  world = await startWorld({ route53PendingMs: 500 });
  ({ vpcId } = await world.createVpc("10.40.0.0/16"));
  zoneId = await world.createHostedZone("eip.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

afterEach(() => {
  world.proxy.clearFaults();
  world.proxy.ec2.reset();
});

const boot = (userData: string): Promise<Booted> =>
  bootInWorld(world, userData, { vpcId, tags: { Role: "web", Env: "test" } });
const run = (command: string, b: Booted): Promise<RunResult> => runOn(world, command, b);

/** A pool of fresh addresses carrying a tag no other test uses. */
async function pool(size: number): Promise<{ tag: string; addresses: { allocationId: string; publicIp: string }[] }> {
  const tag = `pool-${++pools}`;
  const addresses = [];
  for (let i = 0; i < size; i++) addresses.push(await world.allocateAddress({ Pool: tag }));
  return { tag, addresses };
}

async function address(allocationId: string): Promise<Address> {
  const out = await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
  return out.Addresses![0]!;
}

/** Which interface holds the address (moto leaves InstanceId empty for an association made by interface). */
const holder = async (allocationId: string): Promise<string | undefined> =>
  (await address(allocationId)).NetworkInterfaceId || undefined;

async function giveTo(allocationId: string, instanceId: string): Promise<void> {
  await world.ec2.send(new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId }));
}

const poolConfig = (tag: string, extra = ""): string =>
  `#bootlace\nelastic_ip:\n  pool: { tags: { Pool: ${tag} } }\n${extra}`;

const associations = () => world.proxy.calls.filter((c) => c.operation === "AssociateAddress");

describe("claiming an Elastic IP", () => {
  it("claims a free address of the pool, shows its public DNS name, and a second run changes nothing", async () => {
    const { tag, addresses } = await pool(3);
    await giveTo(addresses[0]!.allocationId, (await world.launchInstance({ vpcId })).instanceId);
    const b = await boot(poolConfig(tag));

    const plan = await run("plan", b);
    expect(plan.code).toBe(0);
    expect(plan.json).toMatchObject({
      changes: 1,
      actions: [{ name: "elastic_ip", changes: [{ kind: "associate", target: `a free address of pool Pool=${tag}` }] }],
    });

    world.proxy.resetCalls();
    const first = await run("run", b);

    expect(first.code).toBe(0);
    const mine = [];
    for (const a of addresses) if ((await holder(a.allocationId)) === b.instance.interfaceId) mine.push(a);
    expect(mine).toHaveLength(1);
    const claimed = mine[0]!;
    expect(claimed.allocationId).not.toBe(addresses[0]!.allocationId);
    expect((await address(claimed.allocationId)).PrivateIpAddress).toBe(b.instance.privateIpv4);
    const dnsName = `ec2-${claimed.publicIp.replace(/\./g, "-")}.compute-1.amazonaws.com`;
    expect(first.json).toMatchObject({
      changes: 1,
      actions: [{ name: "elastic_ip", status: "ok", summary: expect.stringContaining(dnsName) as string }],
    });
    expect(associations()).toHaveLength(1);
    expect((await stateOf(b)).saved.elastic_ip).toMatchObject({ publicIp: claimed.publicIp, publicDns: dnsName });

    world.proxy.resetCalls();
    const second = await run("run", b);
    expect(second.code).toBe(0);
    expect(second.json).toMatchObject({ changes: 0 });
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });

  it("claims a fixed address, and records with value elastic_ip or public_ipv4 get it in the same run", async () => {
    const { addresses } = await pool(1);
    const { allocationId, publicIp } = addresses[0]!;
    const b = await boot(
      [
        "#bootlace",
        `elastic_ip: { allocation_id: ${allocationId} }`,
        "dns:",
        "  records:",
        "    - { zone: eip.internal, name: 'pub-{{instance.id}}.eip.internal', value: elastic_ip }",
        "    - { zone: eip.internal, name: 'ipv4-{{instance.id}}.eip.internal', value: public_ipv4 }",
      ].join("\n"),
    );

    const plan = await run("plan", b);
    expect(plan.json).toMatchObject({
      actions: [
        { name: "elastic_ip", changes: [{ kind: "associate", target: `${allocationId} (${publicIp})` }] },
        { name: "dns", changes: [{ detail: `${publicIp} ttl 60` }, { detail: `${publicIp} ttl 60` }] },
      ],
    });
    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(await holder(allocationId)).toBe(b.instance.interfaceId);
    const records = await world.listRecords(zoneId);
    expect(records.find((r) => r.name === `pub-${b.instance.instanceId}.eip.internal.`)?.values).toEqual([publicIp]);
    expect(records.find((r) => r.name === `ipv4-${b.instance.instanceId}.eip.internal.`)?.values).toEqual([publicIp]);
  });

  it("two agents, one free address: exactly one wins, the other fails naming the pool and takes nothing", async () => {
    const { tag, addresses } = await pool(1);
    const [a, b] = await Promise.all([boot(poolConfig(tag)), boot(poolConfig(tag))]);
    // Both have read the address as free before either associates: the race AWS has when instances boot together.
    world.proxy.ec2.holdAssociations(2);
    world.proxy.resetCalls();

    const results = await Promise.all([run("run", a), run("run", b)]);

    expect(results.map((r) => r.code).sort()).toEqual([0, 1]);
    // The loser's AssociateAddress (AllowReassociation=false) was refused; it did not take the address back.
    expect(
      associations()
        .map((c) => c.status)
        .sort(),
    ).toEqual([200, 400]);
    const winner = results[0].code === 0 ? a : b;
    const loser = winner === a ? b : a;
    const lost = results[0].code === 0 ? results[1] : results[0];
    expect(await holder(addresses[0]!.allocationId)).toBe(winner.instance.interfaceId);
    expect(lost.stderr).toContain(`went to ${winner.instance.interfaceId}`);
    const state = await stateOf(loser);
    expect(state.run.failed).toEqual(["elastic_ip"]);
    expect(state.run.actions.elastic_ip?.error).toMatch(new RegExp(`could not claim any address of pool Pool=${tag}`));
  });

  it("moves on to the next candidate when another instance wins the first one", async () => {
    const { tag, addresses } = await pool(2);
    const rival = await world.launchInstance({ vpcId });
    const b = await boot(poolConfig(tag));
    world.proxy.ec2.loseNextAssociation({ toInstanceId: rival.instanceId });
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(associations().map((c) => c.status)).toEqual([400, 200]);
    const holders = await Promise.all(addresses.map((x) => holder(x.allocationId)));
    expect(holders.sort()).toEqual([rival.interfaceId, b.instance.interfaceId].sort());
    expect(result.stderr).toMatch(/went to .* first; trying the next candidate/);
  });

  it("refuses to take a fixed address in use elsewhere, changes nothing, and says how to take it", async () => {
    const { addresses } = await pool(1);
    const other = await world.launchInstance({ vpcId });
    await giveTo(addresses[0]!.allocationId, other.instanceId);
    const b = await boot(`#bootlace\nelastic_ip: { allocation_id: ${addresses[0]!.allocationId} }\n`);
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`is associated with ${other.instanceId}`);
    expect(result.stderr).toContain("allow_reassociation: true");
    expect(world.proxy.mutatingCalls()).toEqual([]);
    expect((await address(addresses[0]!.allocationId)).InstanceId).toBe(other.instanceId);
  });

  it("a pool with no free address fails naming the pool, and nothing is taken from anyone", async () => {
    const { tag, addresses } = await pool(1);
    const other = await world.launchInstance({ vpcId });
    await giveTo(addresses[0]!.allocationId, other.instanceId);
    const b = await boot(poolConfig(tag));
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`no free Elastic IP in pool Pool=${tag}`);
    expect(world.proxy.mutatingCalls()).toEqual([]);
    expect((await address(addresses[0]!.allocationId)).InstanceId).toBe(other.instanceId);
  });

  it("takes an address in use elsewhere with allow_reassociation: true, and logs from whom", async () => {
    const { addresses } = await pool(1);
    const other = await world.launchInstance({ vpcId });
    await giveTo(addresses[0]!.allocationId, other.instanceId);
    const b = await boot(
      `#bootlace\nelastic_ip: { allocation_id: ${addresses[0]!.allocationId}, allow_reassociation: true }\n`,
    );

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain(`taking ${addresses[0]!.allocationId}`);
    expect(result.stderr).toContain(`from ${other.instanceId}`);
    expect(result.json).toMatchObject({ actions: [{ changes: [{ kind: "reassociate" }] }] });
    expect(await holder(addresses[0]!.allocationId)).toBe(b.instance.interfaceId);
  });

  it("recovers from throttling and 5xx on every EC2 call it makes", async () => {
    const { tag, addresses } = await pool(1);
    const b = await boot(poolConfig(tag));
    for (const operation of ["DescribeAddresses", "AssociateAddress"]) {
      world.proxy.inject({ service: "ec2", operation, kind: "throttle" });
      world.proxy.inject({ service: "ec2", operation, kind: "5xx" });
    }
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(world.proxy.calls.filter((c) => c.injected)).toHaveLength(4);
    expect(await holder(addresses[0]!.allocationId)).toBe(b.instance.interfaceId);
  });
});

describe("bad Elastic IP configuration is refused with exit 2 and nothing changes", () => {
  it.each([
    [
      "an allocation id that does not exist",
      "elastic_ip: { allocation_id: eipalloc-0123456789abcdef0 }",
      /elastic_ip\.allocation_id: no Elastic IP with allocation id eipalloc-0123456789abcdef0/,
    ],
    [
      "a private IP that is not the instance's",
      "elastic_ip: { pool: { tags: { Pool: none } }, private_ip: 10.99.0.1 }",
      /elastic_ip\.private_ip: 10\.99\.0\.1 is not a private IPv4 address of this instance's primary interface/,
    ],
  ])("%s", async (_label, config, message) => {
    const b = await boot(`#bootlace\n${config}\n`);
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain("nothing was changed");
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});
