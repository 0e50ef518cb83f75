// The world's seeding helpers give what the tests build on: an ImdsInstance that agrees with EC2, resources that
// exist in moto as described, an IMDS emulator serving the instance, and a close() that leaves nothing running.
import {
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeNetworkInterfacesCommand,
  DescribeSubnetsCommand,
} from "@aws-sdk/client-ec2";
import { DescribeTargetGroupsCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { GetHostedZoneCommand } from "@aws-sdk/client-route-53";
import { startWorld, type World } from "../../harness/world";

jest.setTimeout(30_000);

let world: World;
beforeAll(async () => {
  world = await startWorld({ region: "eu-west-1" });
});
afterAll(() => world?.close());

/** 10.1.2.3 within 10.1.0.0/16? */
function inCidr(ip: string, cidr: string): boolean {
  const toInt = (a: string) => a.split(".").reduce((n, octet) => n * 256 + Number(octet), 0);
  const [base = "", bits = "32"] = cidr.split("/");
  const size = 2 ** (32 - Number(bits));
  return Math.floor(toInt(ip) / size) === Math.floor(toInt(base) / size);
}

describe("launchInstance", () => {
  it("describes the instance as EC2 does: ids, addresses, MAC of the primary interface, placement, tags", async () => {
    const i = await world.launchInstance({ tags: { Role: "db", Env: "test" }, userData: "#bootlace\n" });

    const described = await world.ec2.send(new DescribeInstancesCommand({ InstanceIds: [i.instanceId] }));
    const ec2 = described.Reservations?.[0]?.Instances?.[0];
    expect(ec2?.State?.Name).toBe("running");
    expect(i.privateIpv4).toBe(ec2?.PrivateIpAddress);
    expect([i.vpcId, i.subnetId, i.imageId, i.instanceType]).toEqual([
      ec2?.VpcId,
      ec2?.SubnetId,
      ec2?.ImageId,
      ec2?.InstanceType,
    ]);
    const eni = await world.ec2.send(
      new DescribeNetworkInterfacesCommand({ NetworkInterfaceIds: [i.interfaceId ?? ""] }),
    );
    expect(eni.NetworkInterfaces?.[0]?.MacAddress).toBe(i.mac);
    expect(eni.NetworkInterfaces?.[0]?.PrivateIpAddress).toBe(i.privateIpv4);
    expect(eni.NetworkInterfaces?.[0]?.Attachment?.InstanceId).toBe(i.instanceId);

    expect(i.region).toBe("eu-west-1");
    expect(i.az.startsWith("eu-west-1")).toBe(true);
    expect(i.accountId).toBe("123456789012");
    expect(inCidr(i.privateIpv4, i.vpcCidr)).toBe(true);
    const subnet = await world.ec2.send(new DescribeSubnetsCommand({ SubnetIds: [i.subnetId] }));
    expect(inCidr(i.privateIpv4, subnet.Subnets?.[0]?.CidrBlock ?? "")).toBe(true);
    expect(subnet.Subnets?.[0]?.AvailabilityZone).toBe(i.az);
    expect(i.tags).toEqual({ Role: "db", Env: "test" });
    expect(i.userData).toBe("#bootlace\n");
    expect(i.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  });

  it("puts instances without a VPC into one shared VPC, and others where asked", async () => {
    const a = await world.launchInstance();
    const b = await world.launchInstance();
    expect(b.vpcId).toBe(a.vpcId);
    expect(b.privateIpv4).not.toBe(a.privateIpv4);

    const own = await world.createVpc("10.9.0.0/16");
    const c = await world.launchInstance({ vpcId: own.vpcId });
    expect([c.vpcId, c.subnetId, c.vpcCidr]).toEqual([own.vpcId, own.subnetId, "10.9.0.0/16"]);
    expect(inCidr(c.privateIpv4, "10.9.0.0/24")).toBe(true);
  });
});

describe("other seeding", () => {
  it("allocateAddress makes a tagged, unassociated address", async () => {
    const { allocationId, publicIp } = await world.allocateAddress({ Pool: "web" });
    const found = await world.ec2.send(
      new DescribeAddressesCommand({ Filters: [{ Name: "tag:Pool", Values: ["web"] }] }),
    );
    expect(found.Addresses?.map((x) => [x.AllocationId, x.PublicIp])).toEqual([[allocationId, publicIp]]);
    expect(found.Addresses?.[0]?.AssociationId).toBeFalsy();
  });

  it("createHostedZone returns the bare id; with a VPC the zone is private", async () => {
    const { vpcId } = await world.createVpc("10.8.0.0/16");
    const privateId = await world.createHostedZone("corp.internal", { privateVpcId: vpcId });
    const publicId = await world.createHostedZone("corp.example.com");
    expect(privateId).not.toContain("/");
    const priv = await world.route53.send(new GetHostedZoneCommand({ Id: privateId }));
    expect(priv.HostedZone?.Config?.PrivateZone).toBe(true);
    expect(priv.VPCs?.map((v) => v.VPCId)).toEqual([vpcId]);
    const pub = await world.route53.send(new GetHostedZoneCommand({ Id: publicId }));
    expect(pub.HostedZone?.Config?.PrivateZone).toBe(false);
  });

  it("createTargetGroup returns the ARN of a group with the asked port and type", async () => {
    const { vpcId } = await world.createVpc("10.7.0.0/16");
    const arn = await world.createTargetGroup({ name: "api", vpcId, port: 8080, targetType: "ip" });
    const tg = await world.elbv2.send(new DescribeTargetGroupsCommand({ TargetGroupArns: [arn] }));
    expect(tg.TargetGroups?.map((g) => [g.TargetGroupName, g.Port, g.TargetType, g.VpcId])).toEqual([
      ["api", 8080, "ip", vpcId],
    ]);
  });

  it("listRecords simplifies rrsets, the zone's NS and SOA included", async () => {
    const zoneId = await world.createHostedZone("list.example.com");
    const records = await world.listRecords(zoneId);
    expect(records.map((r) => [r.name, r.type])).toEqual([
      ["list.example.com.", "NS"],
      ["list.example.com.", "SOA"],
    ]);
    expect(records[0]?.values.length).toBeGreaterThan(0);
  });

  it("none of it goes through the proxy", () => {
    expect(world.proxy.calls).toEqual([]);
  });
});

describe("startImds and close", () => {
  it("serves the instance from an emulator that closes with the world, and close stops moto and the proxy", async () => {
    const own = await startWorld();
    const i = await own.launchInstance({ tags: { Name: "imds" } });
    const imds = await own.startImds(i);
    const token = await (
      await fetch(`${imds.endpoint}/latest/api/token`, {
        method: "PUT",
        headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
      })
    ).text();
    const get = (path: string) =>
      fetch(`${imds.endpoint}/latest/meta-data/${path}`, { headers: { "x-aws-ec2-metadata-token": token } }).then((r) =>
        r.text(),
      );
    expect(await get("instance-id")).toBe(i.instanceId);
    expect(await get(`network/interfaces/macs/${i.mac}/vpc-ipv4-cidr-block`)).toBe(i.vpcCidr);

    await own.close();
    for (const endpoint of [imds.endpoint, own.proxy.endpoint, own.moto.endpoint]) {
      await expect(fetch(`${endpoint}/`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    }
  });
});
