import {
  AssociateAddressCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  EC2Client,
  type Address,
} from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import type { Target } from "../../agent/actions/elastic-ip";
import {
  decideEip,
  elasticIpAction,
  holderOf,
  isAssociated,
  isOurs,
  preferenceOrder,
  STALE_READ_MS,
} from "../../agent/actions/elastic-ip";
import type { Aws } from "../../agent/aws/clients";
import { ConfigErrors, ConfigError } from "../../agent/core/errors";
import { publicDnsName } from "../../agent/instance/facts";
import { instance, testAws, testContext } from "../support/context";

const target: Target = { instanceId: "i-0mine", interfaceId: "eni-0mine", privateIp: "10.0.1.5" };
const free = (id: string, ip = "203.0.113.1"): Address => ({ AllocationId: id, PublicIp: ip, Domain: "vpc" });
const heldBy = (id: string, instanceId: string, eni: string, privateIp = "10.0.9.9"): Address => ({
  ...free(id),
  AssociationId: `eipassoc-${id}`,
  InstanceId: instanceId,
  NetworkInterfaceId: eni,
  PrivateIpAddress: privateIp,
});
const pool = { kind: "pool", label: "Pool=web", tags: { Pool: "web" } } as const;

describe("addresses", () => {
  it("are free without association fields, as AWS sends them, or with moto's empty ones", () => {
    expect(isAssociated(free("a"))).toBe(false);
    expect(isAssociated({ ...free("a"), InstanceId: "", NetworkInterfaceId: "" })).toBe(false);
    expect(isAssociated(heldBy("a", "i-0other", "eni-0other"))).toBe(true);
  });

  it("are ours on this instance's interface at the configured private address (moto leaves InstanceId empty)", () => {
    expect(isOurs({ ...heldBy("a", "", "eni-0mine", "10.0.1.5") }, target)).toBe(true);
    expect(isOurs(heldBy("a", "i-0mine", "eni-0mine", "10.0.1.6"), target)).toBe(false);
    expect(isOurs(heldBy("a", "i-0other", "eni-0other", "10.0.1.5"), target)).toBe(false);
  });

  it("name their holder", () => {
    expect(holderOf(heldBy("a", "i-0other", "eni-0other"))).toBe("i-0other (eni-0other, 10.0.9.9)");
    expect(holderOf(free("a"))).toBe("nobody");
  });

  it("have EC2's public DNS name, compute-1 in us-east-1", () => {
    expect(publicDnsName("203.0.113.7", "us-east-1")).toBe("ec2-203-0-113-7.compute-1.amazonaws.com");
    expect(publicDnsName("203.0.113.7", "eu-west-1")).toBe("ec2-203-0-113-7.eu-west-1.compute.amazonaws.com");
  });
});

describe("decideEip", () => {
  it("changes nothing when an address is already ours", () => {
    const mine = heldBy("b", "i-0mine", "eni-0mine", "10.0.1.5");
    expect(decideEip(pool, [free("a"), mine], target, false)).toEqual({ op: "none", address: mine });
  });

  it("tries only free addresses, in this instance's own order, never asking to reassociate", () => {
    const d = decideEip(pool, [free("a"), heldBy("b", "i-0x", "eni-0x"), free("c")], target, false);
    expect(d).toEqual({
      op: "associate",
      candidates: preferenceOrder([free("a"), free("c")], target.instanceId).map((address) => ({
        address,
        reassociate: false,
      })),
    });
  });

  it("fails naming the pool when nothing is free, and takes nothing", () => {
    const d = decideEip(pool, [heldBy("b", "i-0x", "eni-0x")], target, false);
    expect(d.op === "fail" && d.reason).toMatch(/^no free Elastic IP in pool Pool=web: all 1 are associated elsewhere/);
    expect(decideEip(pool, [], target, false)).toEqual({
      op: "fail",
      reason: "no Elastic IP carries the tags of pool Pool=web",
    });
  });

  it("refuses a fixed address in use elsewhere unless allow_reassociation", () => {
    const fixed = { kind: "fixed", allocationId: "b" } as const;
    const taken = heldBy("b", "i-0x", "eni-0x");
    const refused = decideEip(fixed, [taken], target, false);
    expect(refused.op === "fail" && refused.reason).toMatch(/is associated with i-0x .*allow_reassociation: true/);
    expect(decideEip(fixed, [taken], target, true)).toEqual({
      op: "associate",
      candidates: [{ address: taken, reassociate: true }],
    });
  });

  it("with allow_reassociation, prefers free pool addresses to taking one", () => {
    const d = decideEip(pool, [heldBy("b", "i-0x", "eni-0x"), free("a")], target, true);
    expect(d.op === "associate" && d.candidates.map((c) => [c.address.AllocationId, c.reassociate])).toEqual([
      ["a", false],
      ["b", true],
    ]);
  });

  it("moves its own address to the configured private IP without allow_reassociation", () => {
    const own = heldBy("b", "i-0mine", "eni-0mine", "10.0.1.6");
    expect(decideEip(pool, [own], target, false)).toEqual({
      op: "associate",
      candidates: [{ address: own, reassociate: true }],
    });
  });
});

describe("each instance's order of the pool", () => {
  const addresses = Array.from({ length: 10 }, (_, i) => free(`eipalloc-${i}`));
  const ids = (list: Address[]) => list.map((a) => a.AllocationId);
  const instanceIds = Array.from({ length: 2000 }, (_, i) => `i-${(0x1000_0000_0000 + i * 7919).toString(16)}`);

  it("is the instance's own: the same at every read, whatever order the addresses come in", () => {
    const order = ids(preferenceOrder(addresses, "i-0abc"));
    expect(ids(preferenceOrder([...addresses].reverse(), "i-0abc"))).toEqual(order);
    expect(order.sort()).toEqual(ids(addresses).sort());
  });

  it("starts instances at different addresses: each address is first for about a tenth of 2000 instances", () => {
    const first = new Map<string, number>();
    for (const id of instanceIds) {
      const top = preferenceOrder(addresses, id)[0]!.AllocationId!;
      first.set(top, (first.get(top) ?? 0) + 1);
    }
    expect(first.size).toBe(10);
    for (const n of first.values()) expect(n).toBeGreaterThan(130);
    for (const n of first.values()) expect(n).toBeLessThan(270);
  });

  it("keeps its order when another instance takes an address: the rest are not reshuffled", () => {
    for (const id of instanceIds.slice(0, 50)) {
      const order = ids(preferenceOrder(addresses, id));
      const taken = order[0]!;
      expect(
        ids(
          preferenceOrder(
            addresses.filter((a) => a.AllocationId !== taken),
            id,
          ),
        ),
      ).toEqual(order.slice(1));
    }
  });
});

describe("elastic_ip action against a mocked EC2", () => {
  const ec2 = mockClient(EC2Client);
  beforeEach(() => ec2.reset());

  function context(config: unknown) {
    const aws: Aws = testAws({ ec2: true });
    return testContext(config, {
      aws,
      instance: { ...instance, interfaceId: "eni-0mine", privateIpv4s: ["10.0.1.5"] },
    });
  }
  const mine: Target = { instanceId: instance.id, interfaceId: "eni-0mine", privateIp: instance.privateIpv4 };
  const already = (code: string) => Object.assign(new Error(`resource is already associated`), { name: code });

  it("plans a pool claim as 'a free address of the pool', with no address for dependants yet", async () => {
    ec2.on(DescribeAddressesCommand).resolves({ Addresses: [free("eipalloc-1"), free("eipalloc-2")] });
    const plan = await elasticIpAction.plan(context({ elastic_ip: { pool: { tags: { Pool: "{{tags.Role}}" } } } }));
    expect(plan.changes).toEqual([
      { kind: "associate", target: "a free address of pool Pool=web", detail: `2 free; with ${instance.id} 10.0.1.5` },
    ]);
    expect(plan.output).toEqual({});
    expect(ec2.commandCalls(DescribeAddressesCommand)[0]!.args[0].input.Filters).toEqual([
      { Name: "tag:Pool", Values: ["web"] },
      { Name: "domain", Values: ["vpc"] },
    ]);
  });

  it("sends AllowReassociation=false, and does not read back a claim that went through", async () => {
    ec2.on(AssociateAddressCommand).resolves({ AssociationId: "eipassoc-1" });
    const ctx = context({ elastic_ip: { pool: { tags: { Pool: "web" } } } });
    const candidates = [free("eipalloc-1"), free("eipalloc-2")].map((address) => ({ address, reassociate: false }));

    const outcome = await elasticIpAction.apply(ctx, {
      changes: [],
      data: { source: pool, target: mine, readAt: ctx.clock.now(), decision: { op: "associate", candidates } },
    });

    expect(ec2.commandCalls(AssociateAddressCommand).map((c) => c.args[0].input)).toEqual([
      {
        AllocationId: "eipalloc-1",
        NetworkInterfaceId: "eni-0mine",
        PrivateIpAddress: "10.0.1.5",
        AllowReassociation: false,
      },
    ]);
    expect(ec2.commandCalls(DescribeAddressesCommand)).toEqual([]);
    expect(outcome.output).toMatchObject({
      allocationId: "eipalloc-1",
      publicDns: "ec2-203-0-113-1.compute-1.amazonaws.com",
    });
  });

  it("after a refusal, reads the pool once more and claims what is free now, not the next of a stale list", async () => {
    // Planned with three free; by the time of the claim, another instance holds the first and a third the second.
    const pooled = ["eipalloc-1", "eipalloc-2", "eipalloc-3"];
    ec2.on(DescribeAddressesCommand).resolves({
      Addresses: [
        heldBy("eipalloc-1", "i-0rival", "eni-0rival"),
        heldBy("eipalloc-2", "i-0third", "eni-0third"),
        free("eipalloc-3"),
      ],
    });
    ec2.on(AssociateAddressCommand, { AllocationId: "eipalloc-1" }).rejects(already("Resource.AlreadyAssociated"));
    ec2.on(AssociateAddressCommand, { AllocationId: "eipalloc-3" }).resolves({ AssociationId: "eipassoc-3" });
    const ctx = context({ elastic_ip: { pool: { tags: { Pool: "web" } } } });
    const candidates = pooled.map((id) => ({ address: free(id), reassociate: false }));

    const outcome = await elasticIpAction.apply(ctx, {
      changes: [],
      data: { source: pool, target: mine, readAt: ctx.clock.now(), decision: { op: "associate", candidates } },
    });

    expect(ec2.commandCalls(AssociateAddressCommand).map((c) => c.args[0].input.AllocationId)).toEqual([
      "eipalloc-1",
      "eipalloc-3",
    ]);
    expect(ec2.commandCalls(DescribeAddressesCommand)).toHaveLength(1);
    expect(outcome.output).toMatchObject({ allocationId: "eipalloc-3" });
  });

  it("reads the pool again before claiming when its read is stale (the run waited for other plans)", async () => {
    ec2.on(DescribeAddressesCommand).resolves({
      Addresses: [heldBy("eipalloc-1", "i-0rival", "eni-0rival"), free("eipalloc-2")],
    });
    ec2.on(AssociateAddressCommand).resolves({ AssociationId: "eipassoc-2" });
    const ctx = context({ elastic_ip: { pool: { tags: { Pool: "web" } } } });
    const candidates = [free("eipalloc-1"), free("eipalloc-2")].map((address) => ({ address, reassociate: false }));
    const data = { source: pool, target: mine, decision: { op: "associate" as const, candidates } };

    // Read just now: claimed from the plan's list, no second read.
    await elasticIpAction.apply(ctx, { changes: [], data: { ...data, readAt: ctx.clock.now() - STALE_READ_MS } });
    expect(ec2.commandCalls(DescribeAddressesCommand)).toHaveLength(0);
    expect(ec2.commandCalls(AssociateAddressCommand).map((c) => c.args[0].input.AllocationId)).toEqual(["eipalloc-1"]);

    ec2.resetHistory();
    const outcome = await elasticIpAction.apply(ctx, {
      changes: [],
      data: { ...data, readAt: ctx.clock.now() - STALE_READ_MS - 1 },
    });
    expect(ec2.commandCalls(DescribeAddressesCommand)).toHaveLength(1);
    expect(ec2.commandCalls(AssociateAddressCommand).map((c) => c.args[0].input.AllocationId)).toEqual(["eipalloc-2"]);
    expect(outcome.output).toMatchObject({ allocationId: "eipalloc-2" });
  });

  it("gives up naming each loss when the re-read leaves nothing free, and takes nothing", async () => {
    ec2.on(DescribeAddressesCommand).resolves({ Addresses: [heldBy("eipalloc-1", "i-0rival", "eni-0rival")] });
    ec2.on(AssociateAddressCommand).rejects(already("Resource.AlreadyAssociated"));
    const ctx = context({ elastic_ip: { pool: { tags: { Pool: "web" } } } });

    const error = await elasticIpAction
      .apply(ctx, {
        changes: [],
        data: {
          source: pool,
          target: mine,
          readAt: ctx.clock.now(),
          decision: { op: "associate", candidates: [{ address: free("eipalloc-1"), reassociate: false }] },
        },
      })
      .catch((e: unknown) => e);

    expect((error as Error).message).toBe(
      "could not claim any address of pool Pool=web: another instance won each attempt " +
        "(eipalloc-1 to i-0rival (eni-0rival, 10.0.9.9)); nothing was taken",
    );
    expect(ec2.commandCalls(AssociateAddressCommand)).toHaveLength(1);
  });

  it("after a refusal, goes on to a handoff's address (held by a leaving instance), which the re-read leaves out", async () => {
    // awaitHandoff gave a released address and one still held by an instance that is shutting down; another instance
    // takes the released one first. The pool's own decision sees nothing free, but the handoff's address stays.
    ec2.on(DescribeAddressesCommand).resolves({
      Addresses: [heldBy("eipalloc-1", "i-0rival", "eni-0rival"), heldBy("eipalloc-2", "i-0old", "eni-0old")],
    });
    ec2.on(AssociateAddressCommand, { AllocationId: "eipalloc-1" }).rejects(already("Resource.AlreadyAssociated"));
    ec2.on(AssociateAddressCommand, { AllocationId: "eipalloc-2" }).resolves({ AssociationId: "eipassoc-2" });
    const ctx = context({ elastic_ip: { pool: { tags: { Pool: "web" } } } });
    const candidates = [
      { address: free("eipalloc-1"), reassociate: false },
      { address: heldBy("eipalloc-2", "i-0old", "eni-0old"), reassociate: true },
    ];

    const outcome = await elasticIpAction.apply(ctx, {
      changes: [],
      data: { source: pool, target: mine, readAt: ctx.clock.now(), decision: { op: "associate", candidates } },
    });

    expect(
      ec2
        .commandCalls(AssociateAddressCommand)
        .map((c) => [c.args[0].input.AllocationId, c.args[0].input.AllowReassociation]),
    ).toEqual([
      ["eipalloc-1", false],
      ["eipalloc-2", true],
    ]);
    expect(outcome.output).toMatchObject({ allocationId: "eipalloc-2" });
  });

  it("turns a stale read into a handoff when the pool's free addresses went meanwhile and a leaving instance holds one", async () => {
    // Planned with one free; by the claim, the pool's only address is held by an instance shutting down, which then
    // releases it.
    ec2.on(DescribeAddressesCommand).resolves({ Addresses: [heldBy("eipalloc-1", "i-0old", "eni-0old")] });
    ec2.on(DescribeAddressesCommand, { AllocationIds: ["eipalloc-1"] }).resolves({ Addresses: [free("eipalloc-1")] });
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [{ Instances: [{ InstanceId: "i-0old", State: { Name: "shutting-down", Code: 32 } }] }],
    });
    ec2.on(AssociateAddressCommand).resolves({ AssociationId: "eipassoc-1" });
    const ctx = context({ elastic_ip: { pool: { tags: { Pool: "web" } } } });
    const candidates = [{ address: free("eipalloc-1"), reassociate: false }];

    const outcome = await elasticIpAction.apply(ctx, {
      changes: [],
      data: {
        source: pool,
        target: mine,
        readAt: ctx.clock.now() - STALE_READ_MS - 1,
        decision: { op: "associate", candidates },
      },
    });

    expect(ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(1);
    expect(
      ec2
        .commandCalls(AssociateAddressCommand)
        .map((c) => [c.args[0].input.AllocationId, c.args[0].input.AllowReassociation]),
    ).toEqual([["eipalloc-1", false]]);
    expect(outcome.output).toMatchObject({ allocationId: "eipalloc-1" });
  });

  it("counts Resource.AlreadyAssociated as won when the read-back shows the address is ours (a retried call)", async () => {
    ec2.on(AssociateAddressCommand).rejects(already("Resource.AlreadyAssociated"));
    ec2
      .on(DescribeAddressesCommand)
      .resolves({ Addresses: [heldBy("eipalloc-1", instance.id, "eni-0mine", "10.0.1.5")] });
    const ctx = context({ elastic_ip: { allocation_id: "eipalloc-0123456789abcdef0" } });

    const outcome = await elasticIpAction.apply(ctx, {
      changes: [],
      data: {
        source: { kind: "fixed", allocationId: "eipalloc-1" },
        target: mine,
        readAt: ctx.clock.now(),
        decision: { op: "associate", candidates: [{ address: free("eipalloc-1"), reassociate: false }] },
      },
    });

    expect(outcome.changes).toHaveLength(1);
    expect(outcome.failures).toBeUndefined();
  });

  it("turns an unknown allocation id into a configuration error naming the key", async () => {
    ec2
      .on(DescribeAddressesCommand)
      .rejects(Object.assign(new Error("not found"), { name: "InvalidAllocationID.NotFound" }));
    const error = await elasticIpAction
      .plan(context({ elastic_ip: { allocation_id: "eipalloc-0123456789abcdef0" } }))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(/^elastic_ip\.allocation_id: no Elastic IP with allocation id/);
    expect(error).not.toBeInstanceOf(ConfigErrors);
  });
});

describe("elastic_ip permissions", () => {
  const statements = (eip: object) => elasticIpAction.permissions!(testContext({ elastic_ip: eip }).config);

  it("scopes a fixed address to its allocation id", () => {
    const [, associate] = statements({ allocation_id: "eipalloc-0abc1234" });
    expect(associate).toMatchObject({ Resource: "arn:aws:ec2:*:*:elastic-ip/eipalloc-0abc1234" });
    expect(associate?.Condition).toBeUndefined();
  });

  it("scopes a pool to its tags, a templated value as a wildcard", () => {
    const [read, associate, instanceSide] = statements({ pool: { tags: { Pool: "web-{{tags.Env}}", Team: "a" } } });
    expect(read).toMatchObject({ Action: ["ec2:DescribeAddresses"], Resource: "*" });
    expect(associate).toMatchObject({
      Resource: "arn:aws:ec2:*:*:elastic-ip/*",
      Condition: { StringLike: { "aws:ResourceTag/Pool": "web-*", "aws:ResourceTag/Team": "a" } },
    });
    expect(instanceSide?.Resource).toEqual(["arn:aws:ec2:*:*:instance/*", "arn:aws:ec2:*:*:network-interface/*"]);
  });
});
