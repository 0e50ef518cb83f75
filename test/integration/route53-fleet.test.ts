// DNS for fleets, end to end: the real bundle, IMDS from the emulator, Route 53 from moto behind the fidelity proxy
// (which lists, pages and validates routing-policy records as AWS does where moto does not). Shared names, PTRs,
// IPv6 from IMDS and the reaper; each checked in the zone afterwards, and each second run makes no changing call.
import { ChangeResourceRecordSetsCommand, CreateHealthCheckCommand } from "@aws-sdk/client-route-53";
import { TerminateInstancesCommand } from "@aws-sdk/client-ec2";
import type { ImdsEmulator, ImdsInstance } from "../harness/imds-emulator";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { SimpleRecord, World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(180_000);

let world: World;
let vpcId: string;
let zoneId: string;
let reverseZoneId: string;
let publicReverseZoneId: string;

beforeAll(async () => {
  world = await startWorld({ route53PendingMs: 300 });
  ({ vpcId } = await world.createVpc("10.20.0.0/16"));
  const other = await world.createVpc("10.30.0.0/16");
  zoneId = await world.createHostedZone("fleet.internal", { privateVpcId: vpcId });
  // Two reverse zones hold 10.20.x.x in this VPC: the longer one wins. A longer one of another VPC does not count.
  await world.createHostedZone("10.in-addr.arpa", { privateVpcId: vpcId });
  reverseZoneId = await world.createHostedZone("20.10.in-addr.arpa", { privateVpcId: vpcId });
  await world.createHostedZone("0.20.10.in-addr.arpa", { privateVpcId: other.vpcId });
  publicReverseZoneId = await world.createHostedZone("113.0.203.in-addr.arpa", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

interface Booted {
  instance: ImdsInstance;
  imds: ImdsEmulator;
  root: string;
}

async function boot(userData: string, extra: Partial<ImdsInstance> = {}): Promise<Booted> {
  const instance = await world.launchInstance({ vpcId });
  const imds = await world.startImds({ ...instance, ...extra, userData });
  return { instance, imds, root: await makeRoot() };
}

const run = (command: "run" | "stop" | "plan", b: Booted) =>
  runBootlace([command, "--json"], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });

/** A run that must succeed, then a second one that must change nothing and make no changing call. */
async function runTwice(b: Booted): Promise<void> {
  const first = await run("run", b);
  expect([first.code, first.stderr]).toEqual([0, expect.any(String)]);
  world.proxy.resetCalls();
  const second = await run("run", b);
  expect(second.code).toBe(0);
  expect(second.json).toMatchObject({ changes: 0 });
  expect(world.proxy.mutatingCalls()).toEqual([]);
}

const at = (records: SimpleRecord[], name: string, type?: string) =>
  records.filter((r) => r.name === name && (type === undefined || r.type === type));

/** A record set someone else made (no ownership record), straight into moto. */
async function foreign(zone: string, name: string, type: "A" | "PTR", value: string, extra = {}): Promise<void> {
  await world.route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zone,
      ChangeBatch: {
        Changes: [
          {
            Action: "CREATE",
            ResourceRecordSet: { Name: name, Type: type, TTL: 300, ResourceRecords: [{ Value: value }], ...extra },
          },
        ],
      },
    }),
  );
}

describe("calls", () => {
  const byOperation = () => {
    const out: Record<string, number> = {};
    for (const c of world.proxy.calls) out[c.operation] = (out[c.operation] ?? 0) + 1;
    return out;
  };

  it("a first run finds the zone, reads each name set once and sends one batch; a later boot only reads", async () => {
    const b = await boot(
      [
        "#bootlace",
        "dns:",
        "  records:",
        '    - { zone: fleet.internal, name: "{{instance.id}}.fleet.internal" }',
        '    - { zone: fleet.internal, name: "{{instance.id}}.fleet.internal", type: AAAA, value: "fd00::1" }',
        '    - { zone: fleet.internal, name: pairs.fleet.internal, set_identifier: "{{instance.id}}", multivalue: true }',
      ].join("\n"),
    );
    world.proxy.resetCalls();
    expect((await run("run", b)).code).toBe(0);
    const { GetChange: polls = 0, ListResourceRecordSets: pages = 0, ...first } = byOperation();
    expect(first).toEqual({ ListHostedZonesByName: 1, ChangeResourceRecordSets: 1 });
    // Two name sets (the instance's own name with A and AAAA, and the shared name): at most one page each, and
    // one page when a page reaches from the first to the second (as in this small zone).
    expect(pages).toBeGreaterThanOrEqual(1);
    expect(pages).toBeLessThanOrEqual(2);
    expect(polls).toBeGreaterThanOrEqual(1);
    const batch = world.proxy.calls.filter((c) => c.operation === "ChangeResourceRecordSets");
    expect(batch).toHaveLength(1);

    world.proxy.resetCalls();
    expect((await run("run", b)).code).toBe(0);
    expect(byOperation()).toEqual({ ListResourceRecordSets: pages });
  });
});

describe("a name the fleet shares", () => {
  it("three instances share a multivalue name; each stop removes only its own record set", async () => {
    const userData = [
      "#bootlace",
      "dns:",
      "  records:",
      "    - zone: fleet.internal",
      "      name: api.fleet.internal",
      '      set_identifier: "{{instance.id}}"',
      "      multivalue: true",
      "      delete_on_shutdown: true",
    ].join("\n");
    const fleet = [await boot(userData), await boot(userData), await boot(userData)];
    for (const b of fleet) await runTwice(b);

    const shared = at(await world.listRecords(zoneId), "api.fleet.internal.", "A");
    expect(shared.map((r) => [r.setIdentifier, r.values, r.multivalue]).sort()).toEqual(
      fleet.map((b) => [b.instance.instanceId, [b.instance.privateIpv4], true]).sort(),
    );
    for (const b of fleet) {
      const owner = at(await world.listRecords(zoneId), `${b.instance.instanceId}._bootlace-a.api.fleet.internal.`);
      expect(owner).toEqual([
        expect.objectContaining({ type: "TXT", values: [expect.stringContaining(b.instance.instanceId)] }),
      ]);
    }

    for (const [i, b] of fleet.entries()) {
      const stop = await run("stop", b);
      expect(stop.code).toBe(0);
      expect(stop.json).toMatchObject({ changes: 1 });
      const left = fleet
        .slice(i + 1)
        .map((o) => o.instance.instanceId)
        .sort();
      const records = await world.listRecords(zoneId);
      expect(
        at(records, "api.fleet.internal.", "A")
          .map((r) => r.setIdentifier)
          .sort(),
      ).toEqual(left);
      expect(
        records
          .filter((r) => r.name.endsWith("._bootlace-a.api.fleet.internal."))
          .map((r) => r.name.split(".")[0])
          .sort(),
      ).toEqual(left);
    }
  });

  it("a weighted pair and a failover pair with a health check", async () => {
    const hc = await world.route53.send(
      new CreateHealthCheckCommand({
        CallerReference: `hc-${Date.now()}`,
        HealthCheckConfig: { Type: "TCP", IPAddress: "10.20.0.10", Port: 5432 },
      }),
    );
    const healthCheckId = hc.HealthCheck?.Id ?? "";
    const weighted = (weight: number) =>
      `#bootlace\ndns:\n  records:\n    - { zone: fleet.internal, name: www.fleet.internal, set_identifier: "{{instance.id}}", weight: ${weight} }\n`;
    const failover = (role: string, id: string, check: string) =>
      `#bootlace\ndns:\n  records:\n    - { zone: fleet.internal, name: db.fleet.internal, set_identifier: ${id}, failover: ${role}${check} }\n`;
    const blue = await boot(weighted(90));
    const green = await boot(weighted(10));
    const primary = await boot(failover("PRIMARY", "primary", `, health_check_id: ${healthCheckId}`));
    const secondary = await boot(failover("SECONDARY", "secondary", ""));
    for (const b of [blue, green, primary, secondary]) await runTwice(b);

    const records = await world.listRecords(zoneId);
    expect(
      at(records, "www.fleet.internal.", "A")
        .map((r) => [r.setIdentifier, r.weight, r.values])
        .sort(),
    ).toEqual(
      [
        [blue.instance.instanceId, 90, [blue.instance.privateIpv4]],
        [green.instance.instanceId, 10, [green.instance.privateIpv4]],
      ].sort(),
    );
    expect(
      at(records, "db.fleet.internal.", "A").map((r) => [r.setIdentifier, r.failover, r.healthCheckId, r.values]),
    ).toEqual(
      expect.arrayContaining([
        ["primary", "PRIMARY", healthCheckId, [primary.instance.privateIpv4]],
        ["secondary", "SECONDARY", undefined, [secondary.instance.privateIpv4]],
      ]),
    );

    // A second PRIMARY is refused before anything is sent: there is one of each.
    const usurper = await boot(failover("PRIMARY", "primary-2", ""));
    world.proxy.resetCalls();
    const refused = await run("run", usurper);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("already has its PRIMARY failover record (set primary)");
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});

describe("reverse records", () => {
  const reverseName = (ip: string) => `${ip.split(".").reverse().join(".")}.in-addr.arpa.`;

  it("keeps the PTR in step: created with the record, moved when the address changes, deleted at stop", async () => {
    const userData = [
      "#bootlace",
      "dns:",
      "  reverse: true",
      "  records:",
      '    - { zone: fleet.internal, name: "{{instance.id}}.fleet.internal", delete_on_shutdown: true }',
      '    - { zone: fleet.internal, name: "pub-{{instance.id}}.fleet.internal", value: public_ipv4, delete_on_shutdown: true }',
    ].join("\n");
    const b = await boot(userData, { publicIpv4: "203.0.113.10" });
    const own = `${b.instance.instanceId}.fleet.internal.`;
    const pub = `pub-${b.instance.instanceId}.fleet.internal.`;
    await runTwice(b);

    let reverse = await world.listRecords(reverseZoneId);
    expect(at(reverse, reverseName(b.instance.privateIpv4), "PTR")).toEqual([
      expect.objectContaining({ values: [own] }),
    ]);
    expect(at(reverse, `_bootlace-ptr.${reverseName(b.instance.privateIpv4)}`, "TXT")).toHaveLength(1);
    expect(at(await world.listRecords(publicReverseZoneId), "10.113.0.203.in-addr.arpa.", "PTR")).toEqual([
      expect.objectContaining({ values: [pub] }),
    ]);

    // A new public address (another Elastic IP): the A record follows, the old PTR goes, a new one comes.
    b.imds.update({ publicIpv4: "203.0.113.20" });
    await runTwice(b);
    const publicReverse = await world.listRecords(publicReverseZoneId);
    expect(at(publicReverse, "10.113.0.203.in-addr.arpa.")).toEqual([]);
    expect(at(publicReverse, "_bootlace-ptr.10.113.0.203.in-addr.arpa.")).toEqual([]);
    expect(at(publicReverse, "20.113.0.203.in-addr.arpa.", "PTR")).toEqual([
      expect.objectContaining({ values: [pub] }),
    ]);
    expect(at(await world.listRecords(zoneId), pub, "A")).toEqual([
      expect.objectContaining({ values: ["203.0.113.20"] }),
    ]);

    const stop = await run("stop", b);
    expect(stop.code).toBe(0);
    reverse = await world.listRecords(reverseZoneId);
    expect(at(reverse, reverseName(b.instance.privateIpv4))).toEqual([]);
    expect(at(reverse, `_bootlace-ptr.${reverseName(b.instance.privateIpv4)}`)).toEqual([]);
    expect(at(await world.listRecords(publicReverseZoneId), "20.113.0.203.in-addr.arpa.")).toEqual([]);
    expect(at(await world.listRecords(zoneId), own)).toEqual([]);
  });

  it("leaves a PTR that is not bootlace's alone, says so, and still publishes the forward record", async () => {
    const b = await boot(
      '#bootlace\ndns:\n  reverse: true\n  records:\n    - { zone: fleet.internal, name: "{{instance.id}}.fleet.internal" }\n',
    );
    const ptr = reverseName(b.instance.privateIpv4);
    await foreign(reverseZoneId, ptr, "PTR", "legacy-host.corp.example.");

    const result = await run("run", b);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${ptr} PTR exists (legacy-host.corp.example.) and is not bootlace's`);
    const reverse = await world.listRecords(reverseZoneId);
    expect(at(reverse, ptr)).toEqual([expect.objectContaining({ ttl: 300, values: ["legacy-host.corp.example."] })]);
    expect(at(reverse, `_bootlace-ptr.${ptr}`)).toEqual([]);
    expect(at(await world.listRecords(zoneId), `${b.instance.instanceId}.fleet.internal.`, "A")).toEqual([
      expect.objectContaining({ values: [b.instance.privateIpv4] }),
    ]);
    world.proxy.resetCalls();
    expect((await run("run", b)).code).toBe(1);
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});

describe("IPv6 from IMDS", () => {
  const userData =
    '#bootlace\ndns:\n  records:\n    - { zone: fleet.internal, name: "v6-{{instance.id}}.fleet.internal", type: AAAA, value: ipv6 }\n';

  it("publishes the primary interface's IPv6 address as AAAA", async () => {
    const b = await boot(userData, { ipv6s: ["2600:1f18:abc:de00::17", "2600:1f18:abc:de00::18"] });
    await runTwice(b);
    expect(at(await world.listRecords(zoneId), `v6-${b.instance.instanceId}.fleet.internal.`, "AAAA")).toEqual([
      expect.objectContaining({ values: ["2600:1f18:abc:de00::17"] }),
    ]);
  });

  it("is a configuration error, changing nothing, on an instance without one", async () => {
    const b = await boot(userData);
    world.proxy.resetCalls();
    const result = await run("run", b);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/dns\.records\.0\.value: instance i-[0-9a-f]+ has no IPv6 address/);
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});

describe("the reaper", () => {
  it("deletes what a terminated owner left under a shared name, and leaves a running owner's and a foreign one", async () => {
    const userData = [
      "#bootlace",
      "dns:",
      "  reap: true",
      "  records:",
      '    - { zone: fleet.internal, name: pool.fleet.internal, set_identifier: "{{instance.id}}", multivalue: true }',
    ].join("\n");
    const [a, b, c] = [await boot(userData), await boot(userData), await boot(userData)];
    for (const x of [a, b, c]) expect((await run("run", x)).code).toBe(0);
    await foreign(zoneId, "pool.fleet.internal.", "A", "10.20.0.99", {
      SetIdentifier: "legacy",
      MultiValueAnswer: true,
    });
    // c dies without its stop path (spot reclaim): its record set stays behind.
    await world.ec2.send(new TerminateInstancesCommand({ InstanceIds: [c.instance.instanceId] }));

    const reaping = await run("run", a);

    expect(reaping.code).toBe(0);
    expect(reaping.json).toMatchObject({ changes: 1 });
    expect(reaping.stderr).toContain(`reaped pool.fleet.internal. A (set ${c.instance.instanceId})`);
    const records = await world.listRecords(zoneId);
    expect(
      at(records, "pool.fleet.internal.", "A")
        .map((r) => r.setIdentifier)
        .sort(),
    ).toEqual([a.instance.instanceId, b.instance.instanceId, "legacy"].sort());
    expect(at(records, `${c.instance.instanceId}._bootlace-a.pool.fleet.internal.`)).toEqual([]);
    expect(at(records, `${b.instance.instanceId}._bootlace-a.pool.fleet.internal.`)).toHaveLength(1);

    world.proxy.resetCalls();
    const again = await run("run", b);
    expect(again.json).toMatchObject({ changes: 0 });
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});
