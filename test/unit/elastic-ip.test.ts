import { AssociateAddressCommand, DescribeAddressesCommand, EC2Client, type Address } from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import type { Target } from "../../agent/actions/elastic-ip";
import { decideEip, elasticIpAction, holderOf, isAssociated, isOurs, shuffle } from "../../agent/actions/elastic-ip";
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

  it("tries only free addresses, in random order, never asking to reassociate", () => {
    const d = decideEip(pool, [free("a"), heldBy("b", "i-0x", "eni-0x"), free("c")], target, false, () => 0);
    expect(d).toEqual({
      op: "associate",
      candidates: [
        { address: free("c"), reassociate: false },
        { address: free("a"), reassociate: false },
      ],
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

  it("shuffles every order with the same odds (Fisher-Yates)", () => {
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) seen.add(shuffle([1, 2, 3]).join(""));
    expect(seen.size).toBe(6);
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

  it("sends AllowReassociation=false, and moves on when another instance wins", async () => {
    ec2
      .on(DescribeAddressesCommand, { AllocationIds: ["eipalloc-1"] })
      .resolves({ Addresses: [heldBy("eipalloc-1", "i-0rival", "eni-0rival")] })
      .on(DescribeAddressesCommand, { AllocationIds: ["eipalloc-2"] })
      .resolves({ Addresses: [heldBy("eipalloc-2", "", "eni-0mine", "10.0.1.5")] });
    ec2.on(AssociateAddressCommand, { AllocationId: "eipalloc-1" }).rejects(already("Resource.AlreadyAssociated"));
    ec2.on(AssociateAddressCommand, { AllocationId: "eipalloc-2" }).resolves({ AssociationId: "eipassoc-2" });
    const ctx = context({ elastic_ip: { pool: { tags: { Pool: "web" } } } });
    const candidates = [free("eipalloc-1"), free("eipalloc-2")].map((address) => ({ address, reassociate: false }));

    const outcome = await elasticIpAction.apply(ctx, {
      changes: [],
      data: { source: pool, target: mine, decision: { op: "associate", candidates } },
    });

    expect(ec2.commandCalls(AssociateAddressCommand).map((c) => c.args[0].input)).toEqual([
      expect.objectContaining({
        AllocationId: "eipalloc-1",
        NetworkInterfaceId: "eni-0mine",
        AllowReassociation: false,
      }),
      expect.objectContaining({ AllocationId: "eipalloc-2", PrivateIpAddress: "10.0.1.5", AllowReassociation: false }),
    ]);
    expect(outcome.output).toMatchObject({
      allocationId: "eipalloc-2",
      publicDns: "ec2-203-0-113-1.compute-1.amazonaws.com",
    });
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
