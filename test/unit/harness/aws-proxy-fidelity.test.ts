// The EC2 and ELBv2 fidelity layers: where moto alone differs from AWS (checked against moto directly), the proxy
// answers as AWS does.
import { AssociateAddressCommand, DescribeAddressesCommand, EC2Client } from "@aws-sdk/client-ec2";
import {
  DeregisterTargetsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import type { ImdsInstance } from "../../harness/imds-emulator";
import { startWorld, TEST_CREDENTIALS, type World } from "../../harness/world";

jest.setTimeout(60_000);

let world: World;
let proxied: { ec2: EC2Client; elbv2: ElasticLoadBalancingV2Client };
let vpcId: string;

beforeAll(async () => {
  world = await startWorld();
  const config = {
    endpoint: world.proxy.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  };
  proxied = { ec2: new EC2Client(config), elbv2: new ElasticLoadBalancingV2Client(config) };
  ({ vpcId } = await world.createVpc("10.70.0.0/16"));
});
afterAll(async () => {
  proxied?.ec2.destroy();
  proxied?.elbv2.destroy();
  await world?.close();
});
afterEach(() => world.proxy.elbv2.reset());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("EC2 addresses", () => {
  let a: ImdsInstance;
  let b: ImdsInstance;
  beforeAll(async () => {
    [a, b] = await Promise.all([world.launchInstance({ vpcId }), world.launchInstance({ vpcId })]);
  });

  it("refuses an address held through an interface without AllowReassociation=true, which moto alone accepts", async () => {
    const { allocationId } = await world.allocateAddress();
    const byInterface = { AllocationId: allocationId, NetworkInterfaceId: a.interfaceId, AllowReassociation: false };
    const toB = { AllocationId: allocationId, InstanceId: b.instanceId, AllowReassociation: false };
    await world.ec2.send(new AssociateAddressCommand(byInterface));
    expect(await world.ec2.send(new AssociateAddressCommand(toB))).toHaveProperty("AssociationId");
    await world.ec2.send(new AssociateAddressCommand({ ...byInterface, AllowReassociation: true }));

    const refused = await proxied.ec2.send(new AssociateAddressCommand(toB)).catch((e: unknown) => e as Error);

    expect(refused).toMatchObject({ name: "Resource.AlreadyAssociated" });
    expect((refused as Error).message).toMatch(new RegExp(`^resource ${allocationId} is already associated`));
    const again = await proxied.ec2.send(new AssociateAddressCommand({ ...toB, AllowReassociation: true }));
    expect(again.AssociationId).toBeDefined();
    // Associating where it already is is not a conflict.
    await proxied.ec2.send(new AssociateAddressCommand(toB));
  });

  it("leaves the association fields out of a free address, as AWS does", async () => {
    const { allocationId } = await world.allocateAddress();
    const direct = await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
    const viaProxy = await proxied.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
    expect(direct.Addresses?.[0]).toMatchObject({ InstanceId: "", NetworkInterfaceId: "" });
    expect(viaProxy.Addresses?.[0]).not.toHaveProperty("InstanceId");
    expect(viaProxy.Addresses?.[0]).not.toHaveProperty("NetworkInterfaceId");
    expect(viaProxy.Addresses?.[0]?.AllocationId).toBe(allocationId);
  });
});

describe("ELBv2 target health", () => {
  async function registered(): Promise<{ arn: string; id: string }> {
    const arn = await world.createTargetGroup({ name: `fid-${Date.now() % 100000}`, vpcId });
    const { instanceId: id } = await world.launchInstance({ vpcId });
    return { arn, id };
  }
  const stateOf = async (arn: string, id?: string) => {
    const out = await proxied.elbv2.send(
      new DescribeTargetHealthCommand({ TargetGroupArn: arn, ...(id && { Targets: [{ Id: id }] }) }),
    );
    return out.TargetHealthDescriptions?.map((d) => [d.Target?.Id, d.TargetHealth?.State, d.TargetHealth?.Reason]);
  };

  it("is initial for the configured time after registering, then what the rule says", async () => {
    const { arn, id } = await registered();
    world.proxy.elbv2.setTargetHealth({
      targetGroupArn: arn,
      initialMs: 1500,
      then: { state: "unhealthy", reason: "Target.Timeout", description: "Request timed out" },
    });
    await proxied.elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: id }] }));

    expect(await stateOf(arn, id)).toEqual([[id, "initial", expect.stringMatching(/^Elb\./)]]);
    await sleep(1600);
    expect(await stateOf(arn, id)).toEqual([[id, "unhealthy", "Target.Timeout"]]);
  });

  it("is draining for the configured time after deregistering, listed with the group too, then unused", async () => {
    const { arn, id } = await registered();
    world.proxy.elbv2.setDrainMs(1500, arn);
    await proxied.elbv2.send(new RegisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: id }] }));
    expect(await stateOf(arn, id)).toEqual([[id, "healthy", undefined]]);
    await proxied.elbv2.send(new DeregisterTargetsCommand({ TargetGroupArn: arn, Targets: [{ Id: id }] }));

    expect(await stateOf(arn, id)).toEqual([[id, "draining", "Target.DeregistrationInProgress"]]);
    expect(await stateOf(arn)).toEqual([[id, "draining", "Target.DeregistrationInProgress"]]);
    await sleep(1600);
    expect(await stateOf(arn, id)).toEqual([[id, "unused", "Target.NotRegistered"]]);
    expect(await stateOf(arn)).toEqual([]);
  });
});
