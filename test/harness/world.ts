// One test world per test file: moto, the fidelity proxy in front of it, SDK clients that seed and inspect moto
// directly (so none of it shows in the proxy's call records), and the IMDS emulators started for its instances.
import {
  AllocateAddressCommand,
  CreateSubnetCommand,
  CreateVpcCommand,
  DescribeImagesCommand,
  DescribeInstancesCommand,
  DescribeSubnetsCommand,
  DescribeVpcsCommand,
  EC2Client,
  RunInstancesCommand,
  type _InstanceType,
  type Tag,
} from "@aws-sdk/client-ec2";
import { CreateTargetGroupCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import {
  CreateHostedZoneCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  type ResourceRecordSet,
  type VPCRegion,
} from "@aws-sdk/client-route-53";
import { startAwsProxy, type AwsProxy } from "./aws-proxy";
import { startImdsEmulator, type ImdsEmulator, type ImdsEmulatorOptions, type ImdsInstance } from "./imds-emulator";
import { startMoto, type Moto } from "./moto";

/** moto's fixed account. */
export const ACCOUNT_ID = "123456789012";
/** What the seeding clients sign with; moto accepts any key. */
export const TEST_CREDENTIALS = {
  accessKeyId: "AKIDWORLDSEEDING0001",
  secretAccessKey: "world-seeding-secret-not-real",
};

export interface SimpleRecord {
  name: string;
  type: string;
  ttl?: number;
  values: string[];
  setIdentifier?: string;
  weight?: number;
  multivalue?: boolean;
  failover?: string;
  healthCheckId?: string;
  /** AliasTarget.DNSName, for alias records. */
  alias?: string;
}

export interface LaunchOptions {
  vpcId?: string;
  subnetId?: string;
  tags?: Record<string, string>;
  instanceType?: string;
  userData?: Buffer | string;
}

export interface World {
  moto: Moto;
  proxy: AwsProxy;
  region: string;
  ec2: EC2Client;
  elbv2: ElasticLoadBalancingV2Client;
  route53: Route53Client;
  /** A VPC (default CIDR 10.0.0.0/16) with one /24 subnet at its start. */
  createVpc(cidr?: string): Promise<{ vpcId: string; subnetId: string; cidr: string }>;
  /** A running instance, described as IMDS would serve it. Without vpcId/subnetId it goes into the world's own VPC. */
  launchInstance(o?: LaunchOptions): Promise<ImdsInstance>;
  allocateAddress(tags?: Record<string, string>): Promise<{ allocationId: string; publicIp: string }>;
  /** Returns the zone id without "/hostedzone/". */
  createHostedZone(name: string, o?: { privateVpcId?: string }): Promise<string>;
  createTargetGroup(o: { name: string; vpcId: string; port?: number; targetType?: "instance" | "ip" }): Promise<string>;
  listRecords(zoneId: string): Promise<SimpleRecord[]>;
  /** An IMDS emulator for the instance, closed with the world. */
  startImds(instance: ImdsInstance, opts?: Omit<ImdsEmulatorOptions, "instance">): Promise<ImdsEmulator>;
  close(): Promise<void>;
}

export async function startWorld(o: { route53PendingMs?: number; region?: string } = {}): Promise<World> {
  const region = o.region ?? "us-east-1";
  const moto = await startMoto();
  let proxy: AwsProxy;
  try {
    proxy = await startAwsProxy({ target: moto.endpoint, route53PendingMs: o.route53PendingMs ?? 0 });
  } catch (e) {
    await moto.stop();
    throw e;
  }
  const client = { endpoint: moto.endpoint, region, credentials: TEST_CREDENTIALS };
  const ec2 = new EC2Client(client);
  const elbv2 = new ElasticLoadBalancingV2Client(client);
  const route53 = new Route53Client(client);
  const emulators: ImdsEmulator[] = [];
  let imageId: Promise<string> | undefined;
  let defaultVpc: Promise<{ vpcId: string; subnetId: string }> | undefined;
  let zones = 0;

  const world: World = {
    moto,
    proxy,
    region,
    ec2,
    elbv2,
    route53,

    async createVpc(cidr = "10.0.0.0/16") {
      const vpc = await ec2.send(new CreateVpcCommand({ CidrBlock: cidr }));
      const vpcId = required(vpc.Vpc?.VpcId, "CreateVpc VpcId");
      const subnet = await ec2.send(
        new CreateSubnetCommand({ VpcId: vpcId, CidrBlock: firstSubnet(cidr), AvailabilityZone: `${region}a` }),
      );
      return { vpcId, subnetId: required(subnet.Subnet?.SubnetId, "CreateSubnet SubnetId"), cidr };
    },

    async launchInstance(l = {}) {
      imageId ??= findImage(ec2);
      const subnetId =
        l.subnetId ??
        (l.vpcId ? await subnetIn(ec2, l.vpcId) : (await (defaultVpc ??= world.createVpc("10.0.0.0/16"))).subnetId);
      const run = await ec2.send(
        new RunInstancesCommand({
          ImageId: await imageId,
          MinCount: 1,
          MaxCount: 1,
          SubnetId: subnetId,
          InstanceType: (l.instanceType ?? "t3.micro") as _InstanceType,
          ...(l.userData !== undefined && { UserData: Buffer.from(l.userData).toString("base64") }),
          ...(l.tags && { TagSpecifications: [{ ResourceType: "instance", Tags: toTags(l.tags) }] }),
        }),
      );
      const instanceId = required(run.Instances?.[0]?.InstanceId, "RunInstances InstanceId");
      const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
      const i = required(described.Reservations?.[0]?.Instances?.[0], "DescribeInstances instance");
      const eni = required(
        i.NetworkInterfaces?.find((n) => n.Attachment?.DeviceIndex === 0),
        "the primary network interface",
      );
      const vpcId = required(i.VpcId, "VpcId");
      const vpcs = await ec2.send(new DescribeVpcsCommand({ VpcIds: [vpcId] }));
      const tags = Object.fromEntries((i.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
      return {
        instanceId,
        region,
        az: required(i.Placement?.AvailabilityZone, "AvailabilityZone"),
        accountId: ACCOUNT_ID,
        privateIpv4: required(i.PrivateIpAddress, "PrivateIpAddress"),
        ...(i.PublicIpAddress ? { publicIpv4: i.PublicIpAddress } : {}),
        mac: required(eni.MacAddress, "MacAddress"),
        vpcId,
        subnetId: required(i.SubnetId, "SubnetId"),
        vpcCidr: required(vpcs.Vpcs?.[0]?.CidrBlock, "the VPC's CidrBlock"),
        interfaceId: required(eni.NetworkInterfaceId, "NetworkInterfaceId"),
        ...(i.PrivateDnsName ? { hostname: i.PrivateDnsName } : {}),
        instanceType: required(i.InstanceType, "InstanceType"),
        imageId: required(i.ImageId, "ImageId"),
        tags,
        ...(l.userData !== undefined && { userData: l.userData }),
      };
    },

    async allocateAddress(tags) {
      const a = await ec2.send(
        new AllocateAddressCommand({
          Domain: "vpc",
          ...(tags && { TagSpecifications: [{ ResourceType: "elastic-ip", Tags: toTags(tags) }] }),
        }),
      );
      return {
        allocationId: required(a.AllocationId, "AllocationId"),
        publicIp: required(a.PublicIp, "PublicIp"),
      };
    },

    async createHostedZone(name, z = {}) {
      const created = await route53.send(
        new CreateHostedZoneCommand({
          Name: name,
          CallerReference: `world-${Date.now()}-${++zones}`,
          // moto makes a zone private only with the flag; AWS infers it from the VPC.
          ...(z.privateVpcId && {
            VPC: { VPCId: z.privateVpcId, VPCRegion: region as VPCRegion },
            HostedZoneConfig: { PrivateZone: true },
          }),
        }),
      );
      return required(created.HostedZone?.Id, "HostedZone Id").replace(/^\/hostedzone\//, "");
    },

    async createTargetGroup(t) {
      const created = await elbv2.send(
        new CreateTargetGroupCommand({
          Name: t.name,
          Protocol: "HTTP",
          Port: t.port ?? 80,
          VpcId: t.vpcId,
          TargetType: t.targetType ?? "instance",
        }),
      );
      return required(created.TargetGroups?.[0]?.TargetGroupArn, "TargetGroupArn");
    },

    async listRecords(zoneId) {
      // One large page: moto cannot page inside one name+type (reference, section 6).
      const page = await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId, MaxItems: 100_000 }));
      return (page.ResourceRecordSets ?? []).map(simplify);
    },

    async startImds(instance, opts = {}) {
      const imds = await startImdsEmulator({ ...opts, instance });
      emulators.push(imds);
      return imds;
    },

    async close() {
      await Promise.allSettled(emulators.map((e) => e.close()));
      for (const c of [ec2, elbv2, route53]) c.destroy();
      await proxy.close();
      await moto.stop();
    },
  };
  return world;
}

function simplify(r: ResourceRecordSet): SimpleRecord {
  const out: SimpleRecord = {
    name: r.Name ?? "",
    type: r.Type ?? "",
    values: (r.ResourceRecords ?? []).map((v) => v.Value ?? ""),
  };
  if (r.AliasTarget?.DNSName) out.alias = r.AliasTarget.DNSName;
  else if (r.TTL !== undefined) out.ttl = r.TTL;
  if (r.SetIdentifier !== undefined) out.setIdentifier = r.SetIdentifier;
  if (r.Weight !== undefined) out.weight = r.Weight;
  if (r.MultiValueAnswer !== undefined) out.multivalue = r.MultiValueAnswer;
  if (r.Failover !== undefined) out.failover = r.Failover;
  if (r.HealthCheckId !== undefined) out.healthCheckId = r.HealthCheckId;
  return out;
}

/** Any Linux AMI moto knows; RunInstances wants one that DescribeImages can find. */
async function findImage(ec2: EC2Client): Promise<string> {
  const linux = await ec2.send(
    new DescribeImagesCommand({ Filters: [{ Name: "name", Values: ["amzn2-ami-hvm-2.0.20180810-x86_64-gp2"] }] }),
  );
  const found = linux.Images?.[0]?.ImageId;
  if (found) return found;
  const any = await ec2.send(new DescribeImagesCommand({ Owners: ["amazon"], MaxResults: 5 }));
  return required(any.Images?.[0]?.ImageId, "an AMI in moto's DescribeImages");
}

async function subnetIn(ec2: EC2Client, vpcId: string): Promise<string> {
  const subnets = await ec2.send(new DescribeSubnetsCommand({ Filters: [{ Name: "vpc-id", Values: [vpcId] }] }));
  return required(subnets.Subnets?.[0]?.SubnetId, `a subnet in ${vpcId}`);
}

/** "10.20.0.0/16" → "10.20.0.0/24": the first /24 of the VPC for its one subnet. */
function firstSubnet(cidr: string): string {
  const [base = "", bits = "24"] = cidr.split("/");
  return Number(bits) >= 24 ? cidr : `${base}/24`;
}

function toTags(tags: Record<string, string>): Tag[] {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

function required<T>(value: T | undefined | null, what: string): T {
  if (value === undefined || value === null || value === "") throw new Error(`moto did not return ${what}`);
  return value;
}
