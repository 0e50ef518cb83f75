import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import type { Instance } from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import type { PeersOutput } from "../../agent/actions/peers";
import { compareAddresses, escapeFilterWildcards, peerList, peersAction, toPeer } from "../../agent/actions/peers";
import type { Aws } from "../../agent/aws/clients";
import { ConfigErrors } from "../../agent/core/errors";
import { instance, testAws, testContext } from "../support/context";

const ec2Instance = (id: string, ip: string | undefined, tags: Record<string, string> = {}): Instance => ({
  InstanceId: id,
  ...(ip && { PrivateIpAddress: ip, PrivateDnsName: `ip-${ip.replace(/\./g, "-")}.ec2.internal` }),
  Placement: { AvailabilityZone: "us-east-1a" },
  Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
});

describe("pure parts", () => {
  it("orders addresses numerically", () => {
    expect(["10.0.0.10", "10.0.0.9", "10.0.1.1", "9.0.0.1"].sort(compareAddresses)).toEqual([
      "9.0.0.1",
      "10.0.0.9",
      "10.0.0.10",
      "10.0.1.1",
    ]);
  });

  it("builds the peer list: this instance excluded, no address no peer, each once, sorted by address", () => {
    const list = peerList(
      [
        ec2Instance("i-000000000000000c1", "10.0.0.20", { Name: "db-2" }),
        ec2Instance(instance.id, instance.privateIpv4, { Name: "me" }),
        ec2Instance("i-000000000000000a1", "10.0.0.3"),
        ec2Instance("i-000000000000000b1", undefined, { Name: "ipv6-only" }),
        ec2Instance("i-000000000000000c1", "10.0.0.20", { Name: "db-2" }),
      ],
      instance.id,
    );
    expect(list.map((p) => [p.id, p.ip, p.name])).toEqual([
      ["i-000000000000000a1", "10.0.0.3", "ip-10-0-0-3.ec2.internal"],
      ["i-000000000000000c1", "10.0.0.20", "db-2"],
    ]);
  });

  it("a peer's name is its Name tag, its tags all of them", () => {
    expect(toPeer(ec2Instance("i-000000000000000a1", "10.0.0.3", { Name: "db-1", Role: "db" }))).toEqual({
      id: "i-000000000000000a1",
      ip: "10.0.0.3",
      name: "db-1",
      az: "us-east-1a",
      tags: { Name: "db-1", Role: "db" },
    });
  });

  it("escapes DescribeInstances wildcards in values that come from templates", () => {
    expect(escapeFilterWildcards("a*b?c\\d")).toBe("a\\*b\\?c\\\\d");
  });
});

describe("peersAction", () => {
  const ec2 = mockClient(EC2Client);
  beforeEach(() => ec2.reset());

  function awsWithEc2(): Aws {
    return testAws({ ec2: true });
  }

  const page = (...instances: Instance[]) => ({ Reservations: [{ Instances: instances }] });

  it("filters by VPC, running state and the tags, rendered against this instance's tags", async () => {
    ec2.on(DescribeInstancesCommand).resolves(page(ec2Instance("i-000000000000000a1", "10.0.0.3", { Name: "db" })));
    const ctx = testContext(
      { peers: { db: { tags: { Role: "db", Env: "{{tags.Env}}", Name: "db-*" } } } },
      { aws: awsWithEc2() },
    );

    const plan = await peersAction.plan(ctx);

    const input = ec2.commandCalls(DescribeInstancesCommand)[0]!.args[0].input;
    expect(input.Filters).toEqual([
      { Name: "vpc-id", Values: [instance.vpcId] },
      { Name: "instance-state-name", Values: ["running"] },
      { Name: "tag:Role", Values: ["db"] },
      { Name: "tag:Env", Values: ["test"] },
      // A wildcard written in the configuration stays a wildcard.
      { Name: "tag:Name", Values: ["db-*"] },
    ]);
    expect(plan.changes).toEqual([]);
    expect((plan.output as PeersOutput).sets.db).toMatchObject({ status: "ok", peers: [{ ip: "10.0.0.3" }] });
  });

  it("follows NextToken through every page", async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce({ ...page(ec2Instance("i-000000000000000a1", "10.0.0.9")), NextToken: "more" })
      .resolvesOnce(page(ec2Instance("i-000000000000000a2", "10.0.0.10")));
    const ctx = testContext({ peers: { app: { tags: { Role: "app" } } } }, { aws: awsWithEc2() });

    const plan = await peersAction.plan(ctx);

    expect((plan.output as PeersOutput).sets.app!.peers.map((p) => p.ip)).toEqual(["10.0.0.9", "10.0.0.10"]);
    expect(ec2.commandCalls(DescribeInstancesCommand)[1]!.args[0].input.NextToken).toBe("more");
  });

  it("reads this instance's tags from the API when IMDS did not give them", async () => {
    ec2
      .on(DescribeInstancesCommand, { InstanceIds: [instance.id] })
      .resolves(page(ec2Instance(instance.id, instance.privateIpv4, { Env: "staging" })));
    ec2.on(DescribeInstancesCommand, { MaxResults: 1000 }).resolves(page());
    const ctx = testContext(
      { peers: { db: { tags: { Env: "{{tags.Env}}" } } } },
      { aws: awsWithEc2(), imdsTags: null },
    );

    const plan = await peersAction.plan(ctx);

    expect((plan.output as PeersOutput).tags).toEqual({ Env: "staging" });
    const filters = ec2.commandCalls(DescribeInstancesCommand).flatMap((c) => c.args[0].input.Filters ?? []);
    expect(filters).toContainEqual({ Name: "tag:Env", Values: ["staging"] });
  });

  it("refuses a filter value that renders empty, as a configuration error", async () => {
    const ctx = testContext({ peers: { db: { tags: { Team: "{{tags.Team}}" } } } }, { aws: awsWithEc2() });

    await expect(peersAction.plan(ctx)).rejects.toThrow(ConfigErrors);
    await expect(peersAction.plan(ctx)).rejects.toThrow(
      /peers\.db\.tags\.Team: "\{\{tags\.Team\}\}" uses \{\{tags\.Team\}\}, empty for this instance \(this instance's tags: Role, Env\)/,
    );
    expect(ec2.commandCalls(DescribeInstancesCommand)).toEqual([]);
  });

  it("plans without waiting; run polls, jittered and growing, until min peers exist", async () => {
    ec2
      .on(DescribeInstancesCommand)
      .resolvesOnce(page())
      .resolvesOnce(page())
      .resolvesOnce(page())
      .resolves(page(ec2Instance("i-000000000000000a1", "10.0.0.3")));
    const ctx = testContext({ peers: { db: { tags: { Role: "db" }, min: 1, timeout: 120 } } }, { aws: awsWithEc2() });

    const plan = await peersAction.plan(ctx);
    expect((plan.output as PeersOutput).sets.db!.status).toBe("waiting");
    expect(ctx.clock.sleeps).toEqual([]);

    const outcome = await peersAction.apply(ctx, plan);

    const db = (outcome.output as PeersOutput).sets.db!;
    expect(db).toMatchObject({ status: "ok", peers: [{ ip: "10.0.0.3" }] });
    expect(outcome.failures).toBeUndefined();
    expect(ctx.clock.sleeps).toHaveLength(3);
    ctx.clock.sleeps.forEach((ms, i) => {
      const ceiling = Math.min(15000, 2000 * 1.5 ** i);
      expect(ms).toBeGreaterThanOrEqual(ceiling / 2);
      expect(ms).toBeLessThanOrEqual(ceiling);
    });
  });

  it("past the timeout the set is short; with no files configured, the peers action itself fails naming it", async () => {
    ec2.on(DescribeInstancesCommand).resolves(page());
    const ctx = testContext({ peers: { db: { tags: { Role: "db" }, min: 2, timeout: 30 } } }, { aws: awsWithEc2() });

    const plan = await peersAction.plan(ctx);
    const outcome = await peersAction.apply(ctx, plan);

    expect((outcome.output as PeersOutput).sets.db).toMatchObject({ status: "short", peers: [] });
    expect(outcome.failures).toEqual([expect.stringMatching(/^peers\.db: 0 peers; fewer than min 2 after 30 s$/)]);
    expect(ctx.clock.sleeps.reduce((a, b) => a + b, 0)).toBe(30_000);
  });

  it("leaves reporting a short set to the files action when files are configured", async () => {
    ec2.on(DescribeInstancesCommand).resolves(page());
    const ctx = testContext(
      { peers: { db: { tags: { Role: "db" }, min: 1, timeout: 0 } }, files: [] },
      { aws: awsWithEc2() },
    );

    const plan = await peersAction.plan(ctx);
    const outcome = await peersAction.apply(ctx, plan);

    expect((outcome.output as PeersOutput).sets.db!.status).toBe("short");
    expect(outcome.failures).toBeUndefined();
  });

  it("asks IAM for DescribeInstances only", () => {
    expect(peersAction.permissions?.(testContext({}).config)).toEqual([
      expect.objectContaining({ Action: ["ec2:DescribeInstances"], Resource: "*" }),
    ]);
  });
});
