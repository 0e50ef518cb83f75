// The proxy is transparent where moto is faithful, classifies every call by service and operation, and counts
// mutating calls the way the agent's "second run makes no changes" promise is checked.
import {
  AssociateAddressCommand,
  CreateTagsCommand,
  DescribeAddressesCommand,
  DescribeInstancesCommand,
  DescribeVpcsCommand,
  EC2Client,
} from "@aws-sdk/client-ec2";
import { DescribeTargetGroupsCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import {
  ChangeResourceRecordSetsCommand,
  GetHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from "@aws-sdk/client-route-53";
import { isDryRun, isMutating, operationOf, serviceOf } from "../../harness/aws-wire";
import { startWorld, TEST_CREDENTIALS, type World } from "../../harness/world";

jest.setTimeout(30_000);

let world: World;
let ec2: EC2Client;
let elbv2: ElasticLoadBalancingV2Client;
let route53: Route53Client;

beforeAll(async () => {
  world = await startWorld();
  const config = {
    endpoint: world.proxy.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  };
  ec2 = new EC2Client(config);
  elbv2 = new ElasticLoadBalancingV2Client(config);
  route53 = new Route53Client(config);
});
afterAll(async () => {
  for (const c of [ec2, elbv2, route53]) c?.destroy();
  await world?.close();
});
beforeEach(() => world.proxy.resetCalls());

describe("forwarding", () => {
  it("answers EC2, ELBv2 and Route 53 reads exactly as moto does", async () => {
    const instance = await world.launchInstance({ tags: { Role: "web" } });
    const vpcId = instance.vpcId;
    await world.createTargetGroup({ name: "fwd", vpcId });
    const zoneId = await world.createHostedZone("fwd.example.com");
    const strip = <T extends { $metadata?: unknown }>(r: T) => ({ ...r, $metadata: undefined });

    const describe = new DescribeInstancesCommand({ InstanceIds: [instance.instanceId] });
    expect(strip(await ec2.send(describe))).toEqual(strip(await world.ec2.send(describe)));
    const groups = new DescribeTargetGroupsCommand({ Names: ["fwd"] });
    expect(strip(await elbv2.send(groups))).toEqual(strip(await world.elbv2.send(groups)));
    const zone = new GetHostedZoneCommand({ Id: zoneId });
    expect(strip(await route53.send(zone))).toEqual(strip(await world.route53.send(zone)));
    const byName = new ListHostedZonesByNameCommand({ DNSName: "fwd.example.com" });
    expect(strip(await route53.send(byName))).toEqual(strip(await world.route53.send(byName)));

    // Each in the order it arrived, and when (the fleet benchmark lines calls up with the buckets' time).
    const times = world.proxy.calls.map((c) => c.at);
    expect([...times].sort((a, b) => a - b)).toEqual(times);
    expect(world.proxy.calls.map(({ at: _, ...rest }) => rest)).toEqual([
      { service: "ec2", operation: "DescribeInstances", status: 200, mutating: false },
      { service: "elasticloadbalancing", operation: "DescribeTargetGroups", status: 200, mutating: false },
      { service: "route53", operation: "GetHostedZone", status: 200, mutating: false },
      { service: "route53", operation: "ListHostedZonesByName", status: 200, mutating: false },
    ]);
  });

  it("passes moto's errors through unchanged", async () => {
    const err = (await ec2
      .send(new DescribeInstancesCommand({ InstanceIds: ["i-00000000000000000"] }))
      .catch((e: unknown) => e)) as Error & { $metadata: { httpStatusCode?: number } };
    expect([err.name, err.$metadata.httpStatusCode]).toEqual(["InvalidInstanceID.NotFound", 400]);
    expect(world.proxy.calls.map((c) => c.status)).toEqual([400]);
  });

  it("is not reached by the world's seeding and inspection clients", async () => {
    await world.createVpc("10.30.0.0/16");
    await world.ec2.send(new DescribeVpcsCommand({}));
    expect(world.proxy.calls).toEqual([]);
  });
});

describe("call records", () => {
  it("marks everything but Describe*/List*/Get* as mutating, and resetCalls starts over", async () => {
    const instance = await world.launchInstance();
    const zoneId = await world.createHostedZone("rec.example.com");
    await ec2.send(new DescribeVpcsCommand({}));
    await ec2.send(new CreateTagsCommand({ Resources: [instance.instanceId], Tags: [{ Key: "k", Value: "v" }] }));
    await route53.send(new ListResourceRecordSetsCommand({ HostedZoneId: zoneId }));
    await route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        ChangeBatch: {
          Changes: [
            {
              Action: "UPSERT",
              ResourceRecordSet: {
                Name: "a.rec.example.com",
                Type: "A",
                TTL: 60,
                ResourceRecords: [{ Value: "10.0.0.1" }],
              },
            },
          ],
        },
      }),
    );
    expect(world.proxy.mutatingCalls().map((c) => c.operation)).toEqual(["CreateTags", "ChangeResourceRecordSets"]);
    expect(world.proxy.calls).toHaveLength(4);

    const held = world.proxy.calls;
    world.proxy.resetCalls();
    expect(held).toHaveLength(0);
    await ec2.send(new DescribeVpcsCommand({}));
    expect(world.proxy.calls.map((c) => c.operation)).toEqual(["DescribeVpcs"]);
  });
});

describe("dry runs and the Date header", () => {
  it("records an EC2 DryRun as a dry run, not as a change, and changes nothing", async () => {
    const instance = await world.launchInstance();
    const { allocationId } = await world.allocateAddress();
    const dry = await ec2
      .send(new AssociateAddressCommand({ DryRun: true, AllocationId: allocationId, InstanceId: instance.instanceId }))
      .catch((e: unknown) => e as Error);
    expect((dry as Error).name).toBe("DryRunOperation");
    expect(world.proxy.calls).toEqual([
      {
        service: "ec2",
        operation: "AssociateAddress",
        status: 412,
        code: "DryRunOperation",
        mutating: false,
        dryRun: true,
        at: expect.any(Number) as number,
      },
    ]);
    const address = await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
    expect(address.Addresses?.[0]?.AssociationId ?? "").toBe("");
  });

  it("setDateSkew moves every answer's Date by that much, 0 puts moto's back", async () => {
    const dateOf = async (): Promise<number> => {
      const res = await fetch(`${world.proxy.endpoint}/moto-api/`);
      await res.arrayBuffer();
      return Date.parse(res.headers.get("date") ?? "");
    };
    const before = await dateOf();
    world.proxy.setDateSkew(3_600_000);
    const skewed = await dateOf();
    world.proxy.setDateSkew(0);
    const after = await dateOf();
    expect(skewed - before).toBeGreaterThanOrEqual(3_600_000);
    expect(skewed - after).toBeLessThanOrEqual(3_600_000);
    expect(skewed - after).toBeGreaterThan(3_500_000);
  });
});

describe("wire classification", () => {
  const auth = (service: string) => ({
    authorization: `AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`,
  });

  it("takes the service from the SigV4 credential scope", () => {
    expect(serviceOf(auth("ec2"), "/")).toBe("ec2");
    expect(serviceOf(auth("elasticloadbalancing"), "/")).toBe("elasticloadbalancing");
    expect(serviceOf(auth("route53"), "/2013-04-01/hostedzone")).toBe("route53");
    expect(serviceOf(auth("sts"), "/")).toBe("unknown");
    expect(serviceOf({}, "/moto-api/")).toBe("unknown");
  });

  it("takes the operation from Action= or from the Route 53 method and path", () => {
    const form = Buffer.from("Action=AssociateAddress&Version=2016-11-15&AllocationId=eipalloc-1");
    expect(operationOf("ec2", "POST", "/", form)).toBe("AssociateAddress");
    expect(
      operationOf("elasticloadbalancing", "GET", "/?Action=RegisterTargets&Version=2015-12-01", Buffer.alloc(0)),
    ).toBe("RegisterTargets");
    const r53 = (method: string, path: string) => operationOf("route53", method, path, Buffer.alloc(0));
    expect(r53("POST", "/2013-04-01/hostedzone/Z1/rrset/")).toBe("ChangeResourceRecordSets");
    expect(r53("POST", "/2013-04-01/hostedzone/Z1/rrset")).toBe("ChangeResourceRecordSets");
    expect(r53("GET", "/2013-04-01/hostedzone/Z1/rrset?maxitems=1")).toBe("ListResourceRecordSets");
    expect(r53("GET", "/2013-04-01/change/C123")).toBe("GetChange");
    expect(r53("GET", "/2013-04-01/hostedzonesbyname?dnsname=a.")).toBe("ListHostedZonesByName");
    expect(r53("GET", "/2013-04-01/hostedzonesbyvpc?vpcid=v&vpcregion=us-east-1")).toBe("ListHostedZonesByVPC");
    expect(r53("GET", "/2013-04-01/hostedzone/Z1")).toBe("GetHostedZone");
    expect(r53("GET", "/2013-04-01/hostedzone")).toBe("ListHostedZones");
    expect(r53("POST", "/2013-04-01/hostedzone")).toBe("CreateHostedZone");
    expect(r53("PATCH", "/2013-04-01/elsewhere")).toBe("PATCH /2013-04-01/elsewhere");
  });

  it("tells a DryRun request by its parameter, in the query or the form body", () => {
    expect(isDryRun("/?Action=DescribeAddresses&DryRun=true", Buffer.alloc(0))).toBe(true);
    expect(isDryRun("/", Buffer.from("Action=AssociateAddress&DryRun=true&AllocationId=eipalloc-1"))).toBe(true);
    expect(isDryRun("/", Buffer.from("Action=AssociateAddress&DryRun=false"))).toBe(false);
    expect(isDryRun("/", Buffer.from("Action=AssociateAddress"))).toBe(false);
  });

  it("counts reads as non-mutating, including unknown GETs", () => {
    expect(["DescribeAddresses", "ListResourceRecordSets", "GetChange", "GET /moto-api/"].map(isMutating)).toEqual([
      false,
      false,
      false,
      false,
    ]);
    expect(["AssociateAddress", "RegisterTargets", "ChangeResourceRecordSets", "POST /x"].map(isMutating)).toEqual([
      true,
      true,
      true,
      true,
    ]);
  });
});
