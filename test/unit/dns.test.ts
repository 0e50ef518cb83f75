import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListHostedZonesByVPCCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from "@aws-sdk/client-route-53";
import type { ListResourceRecordSetsCommandInput, ResourceRecordSet } from "@aws-sdk/client-route-53";
import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { mockClient } from "aws-sdk-client-mock";
import { dnsAction } from "../../agent/actions/dns";
import type { DnsSaved } from "../../agent/actions/dns";
import type { Current, Desired } from "../../agent/actions/dns-records";
import {
  decide,
  decodeRoute53Name,
  expandIPv6,
  listingKey,
  ownedBy,
  ownerRecordName,
  ownerTxtValue,
  parseOwnership,
  reverseName,
} from "../../agent/actions/dns-records";
import { ConfigErrors } from "../../agent/core/errors";
import { testAws, testContext } from "../support/context";

const desired: Desired = {
  zoneId: "Z1",
  zoneName: "example.internal.",
  name: "web.example.internal.",
  type: "A",
  ttl: 60,
  values: ["10.0.1.5"],
  deleteOnShutdown: true,
  takeover: false,
};

const a = (value: string, ttl = 60, name = "web.example.internal."): ResourceRecordSet => ({
  Name: name,
  Type: "A",
  TTL: ttl,
  ResourceRecords: [{ Value: value }],
});
const owner = (o: string, instance = "i-0old", name = "_bootlace-a.web.example.internal."): ResourceRecordSet => ({
  Name: name,
  Type: "TXT",
  TTL: 60,
  ResourceRecords: [{ Value: ownerTxtValue(o, instance) }],
});
const cur = (c: Partial<Current> = {}): Current => ({ siblings: [], siblingOwners: new Map(), ...c });

describe("decide", () => {
  it("creates a record that does not exist", () => {
    expect(decide(desired, cur(), "bootlace")).toEqual({ op: "create" });
  });

  it("changes nothing when its own record already holds the value", () => {
    expect(decide(desired, cur({ rrset: a("10.0.1.5"), ownerRrset: owner("bootlace") }), "bootlace")).toEqual({
      op: "none",
    });
  });

  it("updates its own record when the value or TTL differs", () => {
    expect(decide(desired, cur({ rrset: a("10.0.1.9"), ownerRrset: owner("bootlace") }), "bootlace")).toEqual({
      op: "update",
      was: "10.0.1.9 ttl 60",
    });
    expect(decide(desired, cur({ rrset: a("10.0.1.5", 300), ownerRrset: owner("bootlace") }), "bootlace").op).toBe(
      "update",
    );
  });

  it("refuses a record without an ownership record, naming what to do", () => {
    const d = decide(desired, cur({ rrset: a("10.9.9.9") }), "bootlace");
    expect(d.op).toBe("refuse");
    expect(d.op === "refuse" && d.reason).toMatch(/not bootlace's \(no bootlace ownership record\).*takeover: true/);
  });

  it("refuses a record owned by another bootlace owner", () => {
    const d = decide(desired, cur({ rrset: a("10.9.9.9"), ownerRrset: owner("team-b") }), "bootlace");
    expect(d.op === "refuse" && d.reason).toMatch(/bootlace owner "team-b"/);
  });

  it("takes over a foreign record only with takeover: true, even when the value is already right", () => {
    expect(decide({ ...desired, takeover: true }, cur({ rrset: a("10.0.1.5") }), "bootlace")).toEqual({
      op: "update",
      was: "10.0.1.5 ttl 60",
      takeoverFrom: "no bootlace ownership record",
    });
  });

  it("leaves aliases alone, and a simple record beside routing-policy ones", () => {
    const alias = {
      Name: desired.name,
      Type: "A" as const,
      AliasTarget: { HostedZoneId: "Z", DNSName: "x.", EvaluateTargetHealth: false },
    };
    expect(decide({ ...desired, takeover: true }, cur({ rrset: alias }), "bootlace").op).toBe("refuse");
    const weighted = { ...a("10.0.1.5"), SetIdentifier: "blue", Weight: 10 };
    const d = decide({ ...desired, takeover: true }, cur({ siblings: [weighted] }), "bootlace");
    expect(d.op === "refuse" && d.reason).toMatch(/exists as weighted records \(sets blue\)/);
  });

  it("compares IPv6 addresses and PTR names as Route 53 does, not as text", () => {
    const aaaa: Desired = { ...desired, type: "AAAA", values: ["2001:db8::5"] };
    const stored = { ...a("2001:DB8:0:0::5"), Type: "AAAA" as const };
    expect(decide(aaaa, cur({ rrset: stored, ownerRrset: owner("bootlace") }), "bootlace")).toEqual({ op: "none" });
    const ptr: Desired = { ...desired, type: "PTR", name: "5.1.0.10.in-addr.arpa.", values: ["b.x.", "A.x"] };
    const ptrSet = {
      Name: ptr.name,
      Type: "PTR" as const,
      TTL: 60,
      ResourceRecords: [{ Value: "a.x." }, { Value: "b.x" }],
    };
    expect(decide(ptr, cur({ rrset: ptrSet, ownerRrset: owner("bootlace") }), "bootlace")).toEqual({ op: "none" });
  });

  it("never offers to take over a PTR that is not bootlace's", () => {
    const ptr: Desired = { ...desired, type: "PTR", name: "5.1.0.10.in-addr.arpa.", values: ["web.example.internal."] };
    const foreign = { Name: ptr.name, Type: "PTR" as const, TTL: 300, ResourceRecords: [{ Value: "legacy.corp." }] };
    const d = decide(ptr, cur({ rrset: foreign }), "bootlace");
    expect(d.op === "refuse" && d.reason).toMatch(/exists \(legacy\.corp\.\) and is not bootlace's.*left alone$/);
  });
});

describe("decide, routing-policy records under a shared name", () => {
  const mine: Desired = { ...desired, routing: { setIdentifier: "i-0mine", multivalue: true } };
  const other = (id: string, value: string): ResourceRecordSet => ({
    ...a(value),
    SetIdentifier: id,
    MultiValueAnswer: true,
  });

  it("creates its own record set beside the others' and changes nothing once it is there", () => {
    const siblings = [other("i-0a", "10.0.1.6"), other("i-0b", "10.0.1.7")];
    expect(decide(mine, cur({ siblings }), "bootlace")).toEqual({ op: "create" });
    const rrset = other("i-0mine", "10.0.1.5");
    const ownerRrset = owner("bootlace", "i-0mine", "i-0mine._bootlace-a.web.example.internal.");
    expect(decide(mine, cur({ siblings, rrset, ownerRrset }), "bootlace")).toEqual({ op: "none" });
    expect(
      decide({ ...mine, routing: { ...mine.routing!, healthCheckId: "hc-1" } }, cur({ rrset, ownerRrset }), "bootlace")
        .op,
    ).toBe("update");
  });

  it("replaces this owner's own simple record in the same batch, and refuses beside a foreign one", () => {
    const simple = a("10.0.1.9");
    const replaced = decide(
      mine,
      cur({ siblings: [simple], siblingOwners: new Map([["", owner("bootlace")]]) }),
      "bootlace",
    );
    expect(replaced).toEqual({ op: "create", replaces: [{ rrset: simple, ownerRrset: owner("bootlace") }] });
    const refused = decide(mine, cur({ siblings: [simple] }), "bootlace");
    expect(refused.op === "refuse" && refused.reason).toMatch(
      /exists as a simple record .*no bootlace ownership record/,
    );
  });

  it("refuses to mix policies, and a second PRIMARY", () => {
    const weighted = { ...a("10.0.1.6"), SetIdentifier: "blue", Weight: 10 };
    const mixed = decide(mine, cur({ siblings: [weighted] }), "bootlace");
    expect(mixed.op === "refuse" && mixed.reason).toMatch(
      /has weighted records \(set blue\); a multivalue record cannot join/,
    );
    const primary: Desired = { ...desired, routing: { setIdentifier: "p2", failover: "PRIMARY" } };
    const taken = { ...a("10.0.1.6"), SetIdentifier: "p1", Failover: "PRIMARY" as const };
    const d = decide(primary, cur({ siblings: [taken] }), "bootlace");
    expect(d.op === "refuse" && d.reason).toMatch(/already has its PRIMARY failover record \(set p1\)/);
  });
});

describe("names", () => {
  it("puts the ownership record beside the record, one per set identifier, and keeps a wildcard leftmost", () => {
    expect(ownerRecordName("Web.Example.Internal", "A")).toBe("_bootlace-a.web.example.internal.");
    expect(ownerRecordName("*.example.internal.", "AAAA")).toBe("_bootlace-aaaa-wildcard.example.internal.");
    expect(ownerRecordName("api.example.internal", "A", "i-0abc")).toBe("i-0abc._bootlace-a.api.example.internal.");
    expect(ownerRecordName("7.1.0.10.in-addr.arpa.", "PTR")).toBe("_bootlace-ptr.7.1.0.10.in-addr.arpa.");
  });

  it("reads back which record an ownership record stands for", () => {
    expect(ownedBy("i-0abc._bootlace-a.api.example.internal.")).toEqual({
      name: "api.example.internal.",
      type: "A",
      setIdentifier: "i-0abc",
    });
    expect(ownedBy("_bootlace-aaaa-wildcard.example.internal.")).toEqual({ name: "*.example.internal.", type: "AAAA" });
    expect(ownedBy("api.example.internal.")).toBeUndefined();
  });

  it("round-trips owner and instance, and ignores other TXT values", () => {
    expect(parseOwnership(owner("bootlace"))).toEqual({ owner: "bootlace", instance: "i-0old" });
    expect(parseOwnership({ ...owner("x"), ResourceRecords: [{ Value: '"v=spf1 -all"' }] })).toBeUndefined();
  });

  it("decodes Route 53's octal escapes", () => {
    expect(decodeRoute53Name("\\052.example.internal.")).toBe("*.example.internal.");
  });

  it("sorts names as the listing does: labels reversed, with the trailing dot", () => {
    expect(listingKey("www.Example.com")).toBe("com.example.www.");
    expect(listingKey("www-v2.example.com") < listingKey("www.example.com")).toBe(true);
    expect(listingKey("_bootlace-a.www.example.com").startsWith(listingKey("www.example.com"))).toBe(true);
  });

  it("gives the PTR name of IPv4 and IPv6 addresses", () => {
    expect(reverseName("10.20.1.17")).toBe("17.1.20.10.in-addr.arpa.");
    expect(expandIPv6("2001:db8::5")).toBe("20010db8000000000000000000000005");
    expect(expandIPv6("::ffff:10.0.0.1")).toBe("00000000000000000000ffff0a000001");
    expect(reverseName("2001:db8::5")).toBe(`5.0.0.0.${"0.".repeat(20)}8.b.d.0.1.0.0.2.ip6.arpa.`);
  });
});

// ---- the action against a mocked Route 53 that lists as AWS does ----------------------------------------------

const r53 = mockClient(Route53Client);
const ec2 = mockClient(EC2Client);

/** A hosted zone's record sets, answered as ListResourceRecordSets pages them (AWS's order, MaxItems, Next*). */
function zoneListing(zone: ResourceRecordSet[]): void {
  const position = (r: ResourceRecordSet): [string, string, string] => [
    listingKey(r.Name ?? ""),
    r.Type ?? "",
    r.SetIdentifier ?? "",
  ];
  const cmp = (x: [string, string, string], y: [string, string, string]) =>
    x[0] !== y[0]
      ? x[0] < y[0]
        ? -1
        : 1
      : x[1] !== y[1]
        ? x[1] < y[1]
          ? -1
          : 1
        : x[2] < y[2]
          ? -1
          : x[2] > y[2]
            ? 1
            : 0;
  r53.on(ListResourceRecordSetsCommand).callsFake((input: ListResourceRecordSetsCommandInput) => {
    const sorted = [...zone].sort((x, y) => cmp(position(x), position(y)));
    const start: [string, string, string] = [
      input.StartRecordName ? listingKey(input.StartRecordName) : "",
      input.StartRecordType ?? "",
      input.StartRecordIdentifier ?? "",
    ];
    const rest = sorted.filter((r) => cmp(position(r), start) >= 0);
    const max = input.MaxItems ?? 300;
    const next = rest[max];
    return {
      ResourceRecordSets: rest.slice(0, max),
      IsTruncated: next !== undefined,
      MaxItems: max,
      ...(next && {
        NextRecordName: next.Name,
        NextRecordType: next.Type,
        ...(next.SetIdentifier !== undefined && { NextRecordIdentifier: next.SetIdentifier }),
      }),
    };
  });
}

function zoneExists(): void {
  r53.on(ListHostedZonesByNameCommand).resolves({
    HostedZones: [
      { Id: "/hostedzone/Z1", Name: "example.internal.", CallerReference: "x", Config: { PrivateZone: true } },
      { Id: "/hostedzone/Z2", Name: "example.internal.zzz.", CallerReference: "y" },
    ],
  });
}

function changesAccepted(status: "PENDING" | "INSYNC" = "PENDING"): void {
  r53
    .on(ChangeResourceRecordSetsCommand)
    .resolves({ ChangeInfo: { Id: "/change/C1", Status: status, SubmittedAt: new Date() } });
  r53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: "/change/C1", Status: "INSYNC", SubmittedAt: new Date() } });
}

const batches = () =>
  r53
    .commandCalls(ChangeResourceRecordSetsCommand)
    .map((c) => [
      c.args[0].input.HostedZoneId,
      (c.args[0].input.ChangeBatch?.Changes ?? []).map(
        (ch) =>
          `${ch.Action} ${ch.ResourceRecordSet?.Name} ${ch.ResourceRecordSet?.Type}${ch.ResourceRecordSet?.SetIdentifier ? ` ${ch.ResourceRecordSet.SetIdentifier}` : ""}`,
      ),
    ]);

const count = (ctx: { aws: { calls(): Record<string, number> } }) => ctx.aws.calls();

beforeEach(() => {
  r53.reset();
  ec2.reset();
});

const config = {
  dns: {
    records: [{ zone: "example.internal", name: "{{instance.id}}.example.internal", delete_on_shutdown: true }],
  },
};
const name = "i-0123456789abcdef0.example.internal.";

describe("dns action: reads, batches and waits", () => {
  it("reads the name set in one listing, sends record and owner in one batch, and polls GetChange sparsely", async () => {
    zoneExists();
    zoneListing([]);
    r53.on(ChangeResourceRecordSetsCommand).resolves({
      ChangeInfo: { Id: "/change/C1", Status: "PENDING", SubmittedAt: new Date() },
    });
    r53
      .on(GetChangeCommand)
      .resolvesOnce({ ChangeInfo: { Id: "/change/C1", Status: "PENDING", SubmittedAt: new Date() } })
      .resolvesOnce({ ChangeInfo: { Id: "/change/C1", Status: "PENDING", SubmittedAt: new Date() } })
      .resolves({ ChangeInfo: { Id: "/change/C1", Status: "INSYNC", SubmittedAt: new Date() } });
    const ctx = testContext(config);

    const plan = await dnsAction.plan(ctx);
    expect(plan.changes).toEqual([{ kind: "create", target: `${name} A`, detail: "10.0.1.5 ttl 60" }]);
    const outcome = await dnsAction.apply(ctx, plan);

    expect(batches()).toEqual([["Z1", [`CREATE ${name} A`, `CREATE _bootlace-a.${name} TXT`]]]);
    expect(count(ctx)).toEqual({
      "route53:ListHostedZonesByName": 1,
      "route53:ListResourceRecordSets": 1,
      "route53:ChangeResourceRecordSets": 1,
      "route53:GetChange": 3,
    });
    // The first poll waits about a second (a change is never INSYNC at once); later polls stay about a second apart
    // at first, and none waits long.
    expect(ctx.clock.sleeps).toHaveLength(3);
    for (const ms of ctx.clock.sleeps) expect(ms).toBeGreaterThanOrEqual(800);
    expect(Math.max(...ctx.clock.sleeps)).toBeLessThanOrEqual(2_100);
    expect(outcome.state).toMatchObject({
      records: [{ zoneId: "Z1", name, value: "10.0.1.5", deleteOnShutdown: true }],
      cache: { zones: { "name:example.internal.": { id: "Z1", name: "example.internal.", private: true } } },
    });
  });

  it("backs off to 15 s between polls for a slow change, with jitter, and fails at the deadline", async () => {
    zoneExists();
    zoneListing([]);
    r53
      .on(ChangeResourceRecordSetsCommand)
      .resolves({ ChangeInfo: { Id: "/change/C9", Status: "PENDING", SubmittedAt: new Date() } });
    r53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: "/change/C9", Status: "PENDING", SubmittedAt: new Date() } });
    const ctx = testContext(config);
    ctx.deadline = { at: ctx.clock.now() + 120_000, signal: new AbortController().signal };

    const plan = await dnsAction.plan(ctx);
    await expect(dnsAction.apply(ctx, plan)).rejects.toThrow(/change \/change\/C9 still PENDING after 120 s/);

    expect(ctx.clock.now()).toBe(ctx.deadline.at);
    const sleeps = ctx.clock.sleeps.slice(0, -1); // the last one is cut at the deadline
    expect(Math.max(...sleeps)).toBeLessThanOrEqual(18_000);
    expect(Math.max(...sleeps)).toBeGreaterThanOrEqual(12_000);
    expect(new Set(sleeps).size).toBeGreaterThan(sleeps.length / 2);
    // Sparse: 2 minutes cost about 15 polls, not 120.
    expect(r53.commandCalls(GetChangeCommand).length).toBeLessThanOrEqual(20);
  });

  it("a later boot finds the zone in state: no zone lookup, and with the records in place one call in all", async () => {
    zoneListing([a("10.0.1.5", 60, name), owner("bootlace", "i-0123456789abcdef0", `_bootlace-a.${name}`)]);
    const previous: DnsSaved = {
      owner: "bootlace",
      records: [],
      cache: { zones: { "name:example.internal.": { id: "Z1", name: "example.internal.", private: true } } },
    };
    const ctx = testContext(config, { previous });

    const outcome = await dnsAction.apply(ctx, await dnsAction.plan(ctx));

    expect(outcome.changes).toEqual([]);
    expect(count(ctx)).toEqual({ "route53:ListResourceRecordSets": 1 });
  });

  it("a run that plans again (a pool's address claimed) takes the zone from its first plan; another run looks it up", async () => {
    zoneExists();
    zoneListing([]);
    const ctx = testContext(config);

    await dnsAction.plan(ctx);
    await dnsAction.plan({ ...ctx, upstream: { elastic_ip: { publicIp: "203.0.113.7" } } });
    expect(count(ctx)).toEqual({ "route53:ListHostedZonesByName": 1, "route53:ListResourceRecordSets": 2 });

    const next = testContext(config);
    await dnsAction.plan(next);
    expect(count(next)).toEqual({ "route53:ListHostedZonesByName": 1, "route53:ListResourceRecordSets": 1 });
  });

  it("looks the zone up again when the one remembered is gone", async () => {
    zoneExists();
    r53
      .on(ListResourceRecordSetsCommand, { HostedZoneId: "ZGONE" })
      .rejects(Object.assign(new Error("No hosted zone found with ID: ZGONE"), { name: "NoSuchHostedZone" }));
    r53.on(ListResourceRecordSetsCommand, { HostedZoneId: "Z1" }).resolves({ ResourceRecordSets: [] });
    const previous: DnsSaved = {
      owner: "bootlace",
      records: [],
      cache: { zones: { "name:example.internal.": { id: "ZGONE", name: "example.internal.", private: true } } },
    };
    const ctx = testContext(config, { previous });

    const plan = await dnsAction.plan(ctx);

    expect(plan.data.zones.map((z) => z.zoneId)).toEqual(["Z1"]);
    expect(plan.data.cache.zones?.["name:example.internal."]?.id).toBe("Z1");
  });

  it("pages on only while the listing is still inside the name set", async () => {
    // Four instances share the name; pages of 300 would hold them all, so shrink the zone's page to see the paging.
    const shared = "api.example.internal.";
    const zone: ResourceRecordSet[] = [];
    for (const id of ["i-0a", "i-0b", "i-0c", "i-0d"]) {
      zone.push({ ...a(`10.0.2.${zone.length}`, 60, shared), SetIdentifier: id, MultiValueAnswer: true });
      zone.push(owner("bootlace", "i-0123456789abcdef0", `${id}._bootlace-a.${shared}`));
    }
    zone.push(a("10.0.9.9", 60, "zzz.example.internal."));
    zoneListing(zone);
    const { readNameSets } = await import("../../agent/actions/dns-read");
    const ctx = testContext({});

    const read = await readNameSets(ctx, "Z1", new Map([[shared, new Set(["A" as const])]]));

    expect(read.all(shared, "A").map((r) => r.SetIdentifier)).toEqual(["i-0a", "i-0b", "i-0c", "i-0d"]);
    expect(r53.commandCalls(ListResourceRecordSetsCommand)).toHaveLength(1);
  });

  it("reads again and upserts when someone created the record between plan and apply", async () => {
    zoneExists();
    const zone: ResourceRecordSet[] = [];
    zoneListing(zone);
    r53
      .on(ChangeResourceRecordSetsCommand)
      .callsFakeOnce(() => {
        zone.push(a("10.0.1.77", 60, name), owner("bootlace", "i-0other", `_bootlace-a.${name}`));
        throw Object.assign(new Error("[Tried to create resource record set but it already exists]"), {
          name: "InvalidChangeBatch",
        });
      })
      .resolves({ ChangeInfo: { Id: "/change/C2", Status: "INSYNC", SubmittedAt: new Date() } });
    r53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: "/change/C2", Status: "INSYNC", SubmittedAt: new Date() } });
    const ctx = testContext(config);

    const outcome = await dnsAction.apply(ctx, await dnsAction.plan(ctx));

    expect(batches()[1]).toEqual(["Z1", [`UPSERT ${name} A`, `UPSERT _bootlace-a.${name} TXT`]]);
    expect(outcome.changes[0]?.kind).toBe("update");
    expect(outcome.changes[0]?.detail).toContain("was 10.0.1.77");
  });
});

describe("dns action: configuration against the world", () => {
  it("refuses, before any change, a zone that does not exist and a name outside its zone", async () => {
    r53.on(ListHostedZonesByNameCommand).resolves({ HostedZones: [] });
    const ctx = testContext({
      dns: {
        records: [
          { zone: "nowhere.internal", name: "a.nowhere.internal" },
          { zone: "nowhere.internal", name: "b.elsewhere.internal" },
        ],
      },
    });
    const error = await dnsAction.plan(ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigErrors);
    expect((error as Error).message).toMatch(/dns\.records\.0\.zone: no hosted zone named nowhere\.internal\./);
    expect(r53.commandCalls(ChangeResourceRecordSetsCommand)).toHaveLength(0);
  });

  it("refuses a zone_id that does not exist, naming the key", async () => {
    r53
      .on(GetHostedZoneCommand)
      .rejects(Object.assign(new Error("No hosted zone found"), { name: "NoSuchHostedZone" }));
    const ctx = testContext({ dns: { records: [{ zone_id: "ZNOSUCH", name: "a.example.internal" }] } });

    const error = await dnsAction.plan(ctx).catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigErrors);
    expect((error as Error).message).toBe("dns.records.0.zone_id: no hosted zone with id ZNOSUCH");
    expect(r53.commandCalls(ListResourceRecordSetsCommand)).toHaveLength(0);
  });

  it("asks which zone when a public and a private zone share the name", async () => {
    r53.on(ListHostedZonesByNameCommand).resolves({
      HostedZones: [
        { Id: "/hostedzone/ZPUB", Name: "example.com.", CallerReference: "a", Config: { PrivateZone: false } },
        { Id: "/hostedzone/ZPRIV", Name: "example.com.", CallerReference: "b", Config: { PrivateZone: true } },
      ],
    });
    r53.on(GetHostedZoneCommand).resolves({
      HostedZone: { Id: "/hostedzone/ZPRIV", Name: "example.com.", CallerReference: "b" },
      VPCs: [{ VPCId: "vpc-0abc", VPCRegion: "us-east-1" }],
    });
    r53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [] });
    const ambiguous = testContext({ dns: { records: [{ zone: "example.com", name: "www.example.com" }] } });
    await expect(dnsAction.plan(ambiguous)).rejects.toThrow(
      /2 hosted zones are named example\.com\..*set private: true or false/,
    );

    const chosen = testContext({ dns: { records: [{ zone: "example.com", private: true, name: "www.example.com" }] } });
    const plan = await dnsAction.plan(chosen);
    expect(plan.data.zones[0]!.records[0]!.desired.zoneId).toBe("ZPRIV");
  });

  it("value ipv6 publishes the primary IPv6 address, and is a configuration error without one", async () => {
    zoneExists();
    zoneListing([]);
    changesAccepted("INSYNC");
    const v6 = {
      dns: { records: [{ zone: "example.internal", name: "v6.example.internal", type: "AAAA", value: "ipv6" }] },
    };
    const ctx = testContext(v6, {
      instance: { ...testContext({}).instance, ipv6s: ["2001:db8:1::17", "2001:db8:1::18"] },
    });
    const plan = await dnsAction.plan(ctx);
    expect(plan.changes).toEqual([
      { kind: "create", target: "v6.example.internal. AAAA", detail: "2001:db8:1::17 ttl 60" },
    ]);

    const without = await dnsAction.plan(testContext(v6)).catch((e: unknown) => e);
    expect(without).toBeInstanceOf(ConfigErrors);
    expect((without as Error).message).toMatch(
      /^dns\.records\.0\.value: instance i-0123456789abcdef0 has no IPv6 address \(IMDS lists none on its primary interface/,
    );
  });

  it("a tag value never makes a wildcard name; a * written in the configuration does", async () => {
    zoneExists();
    zoneListing([]);
    for (const name of ["{{tags.Name}}.example.internal", "{{{tags.Name}}}.example.internal"]) {
      const tagged = testContext(
        { dns: { records: [{ zone: "example.internal", name }] } },
        { imdsTags: { Name: "*" } },
      );
      await expect(dnsAction.plan(tagged)).rejects.toThrow(
        /dns\.records\.0\.name: renders to "\*\.example\.internal\.": a template value would make a wildcard name/,
      );
    }
    const written = testContext({ dns: { records: [{ zone: "example.internal", name: "*.example.internal" }] } });
    expect((await dnsAction.plan(written)).changes[0]?.target).toBe("*.example.internal. A");
  });

  it("a set identifier rendered from a tag must be a plain label: it names the ownership record", async () => {
    zoneExists();
    zoneListing([]);
    const ctx = testContext(
      {
        dns: {
          records: [
            {
              zone: "example.internal",
              name: "api.example.internal",
              set_identifier: "{{tags.Env}}",
              multivalue: true,
            },
          ],
        },
      },
      { imdsTags: { Env: "prod.*" } },
    );
    await expect(dnsAction.plan(ctx)).rejects.toThrow(
      /dns\.records\.0\.set_identifier: renders to "prod\.\*"; expected 1-63 lower-case letters/,
    );
  });
});

describe("dns action: shared names", () => {
  const shared = "api.example.internal.";
  const sharedConfig = {
    dns: {
      records: [
        {
          zone: "example.internal",
          name: "api.example.internal",
          set_identifier: "{{instance.id}}",
          multivalue: true,
          delete_on_shutdown: true,
        },
      ],
    },
  };

  it("adds this instance's own record set and ownership record, touching no other instance's", async () => {
    zoneExists();
    zoneListing([
      { ...a("10.0.1.6", 60, shared), SetIdentifier: "i-0aaaaaaaaaaaaaaaa", MultiValueAnswer: true },
      owner("bootlace", "i-0aaaaaaaaaaaaaaaa", `i-0aaaaaaaaaaaaaaaa._bootlace-a.${shared}`),
    ]);
    changesAccepted("INSYNC");
    const ctx = testContext(sharedConfig);

    const outcome = await dnsAction.apply(ctx, await dnsAction.plan(ctx));

    expect(batches()).toEqual([
      ["Z1", [`CREATE ${shared} A i-0123456789abcdef0`, `CREATE i-0123456789abcdef0._bootlace-a.${shared} TXT`]],
    ]);
    const created = r53.commandCalls(ChangeResourceRecordSetsCommand)[0]!.args[0].input.ChangeBatch!.Changes![0]!;
    expect(created.ResourceRecordSet).toMatchObject({
      MultiValueAnswer: true,
      ResourceRecords: [{ Value: "10.0.1.5" }],
    });
    expect(outcome.changes).toEqual([
      { kind: "create", target: `${shared} A (set i-0123456789abcdef0)`, detail: "10.0.1.5 ttl 60 multivalue" },
    ]);
  });

  it("stop deletes only this instance's record set, exactly as read, in one batch", async () => {
    const mine = { ...a("10.0.1.5", 60, shared), SetIdentifier: "i-0123456789abcdef0", MultiValueAnswer: true };
    const mineOwner = owner("bootlace", "i-0123456789abcdef0", `i-0123456789abcdef0._bootlace-a.${shared}`);
    zoneListing([
      { ...a("10.0.1.6", 60, shared), SetIdentifier: "i-0aaaaaaaaaaaaaaaa", MultiValueAnswer: true },
      owner("bootlace", "i-0aaaaaaaaaaaaaaaa", `i-0aaaaaaaaaaaaaaaa._bootlace-a.${shared}`),
      mine,
      mineOwner,
    ]);
    changesAccepted();
    const saved: DnsSaved = {
      owner: "bootlace",
      records: [
        {
          zoneId: "Z1",
          name: shared,
          type: "A",
          value: "10.0.1.5",
          ttl: 60,
          deleteOnShutdown: true,
          setIdentifier: "i-0123456789abcdef0",
        },
      ],
    };
    const ctx = testContext({});

    const outcome = await dnsAction.stop!(ctx, saved);

    const sent = r53.commandCalls(ChangeResourceRecordSetsCommand);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.args[0].input.ChangeBatch?.Changes).toEqual([
      { Action: "DELETE", ResourceRecordSet: mine },
      { Action: "DELETE", ResourceRecordSet: mineOwner },
    ]);
    expect(outcome.changes).toEqual([
      { kind: "delete", target: `${shared} A (set i-0123456789abcdef0)`, detail: "10.0.1.5" },
    ]);
  });
});

describe("dns action: reverse records", () => {
  const reverseConfig = {
    dns: {
      reverse: true,
      records: [{ zone: "example.internal", name: "{{instance.id}}.example.internal", delete_on_shutdown: true }],
    },
  };
  const ptrName = "5.1.0.10.in-addr.arpa.";

  function reverseZones(): void {
    r53.on(ListHostedZonesByVPCCommand).resolves({
      HostedZoneSummaries: [
        { HostedZoneId: "ZFWD", Name: "example.internal.", Owner: {} },
        { HostedZoneId: "Z10", Name: "10.in-addr.arpa.", Owner: {} },
        { HostedZoneId: "Z100", Name: "0.10.in-addr.arpa.", Owner: {} },
        { HostedZoneId: "Z99", Name: "9.10.in-addr.arpa.", Owner: {} },
      ],
    });
  }

  it("keeps the PTR in the longest reverse zone of the VPC, with its own ownership record", async () => {
    zoneExists();
    reverseZones();
    zoneListing([]);
    changesAccepted("INSYNC");
    const ctx = testContext(reverseConfig);

    const outcome = await dnsAction.apply(ctx, await dnsAction.plan(ctx));

    expect(batches()).toEqual(
      expect.arrayContaining([
        ["Z1", [`CREATE ${name} A`, `CREATE _bootlace-a.${name} TXT`]],
        ["Z100", [`CREATE ${ptrName} PTR`, `CREATE _bootlace-ptr.${ptrName} TXT`]],
      ]),
    );
    expect(outcome.state).toMatchObject({
      ptrs: [{ zoneId: "Z100", name: ptrName, values: [name], keep: [] }],
      cache: { reverse: { vpcId: "vpc-0abc" } },
    });
    expect(r53.commandCalls(ListHostedZonesByVPCCommand)[0]!.args[0].input).toMatchObject({
      VPCId: "vpc-0abc",
      VPCRegion: "us-east-1",
    });
  });

  it("deletes the PTR of an address the instance no longer has, in the same batch as the new one", async () => {
    const oldPtr = "4.1.0.10.in-addr.arpa.";
    zoneExists();
    reverseZones();
    zoneListing([
      { Name: oldPtr, Type: "PTR", TTL: 60, ResourceRecords: [{ Value: name }] },
      owner("bootlace", "i-0123456789abcdef0", `_bootlace-ptr.${oldPtr}`),
    ]);
    changesAccepted("INSYNC");
    const previous: DnsSaved = {
      owner: "bootlace",
      records: [],
      ptrs: [{ zoneId: "Z100", name: oldPtr, values: [name], keep: [] }],
    };
    const ctx = testContext(reverseConfig, { previous });

    const outcome = await dnsAction.apply(ctx, await dnsAction.plan(ctx));

    expect(batches()).toContainEqual([
      "Z100",
      [
        `CREATE ${ptrName} PTR`,
        `CREATE _bootlace-ptr.${ptrName} TXT`,
        `DELETE ${oldPtr} PTR`,
        `DELETE _bootlace-ptr.${oldPtr} TXT`,
      ],
    ]);
    expect(outcome.changes).toContainEqual({
      kind: "delete",
      target: `${oldPtr} PTR`,
      detail: `${name}: no longer this instance's address`,
    });
  });

  it("forgets an old PTR whose reverse zone is gone, and stop passes over a zone that is gone", async () => {
    zoneExists();
    reverseZones();
    const gone = Object.assign(new Error("No hosted zone found with ID: ZOLD"), { name: "NoSuchHostedZone" });
    r53.on(ListResourceRecordSetsCommand, { HostedZoneId: "ZOLD" }).rejects(gone);
    r53.on(ListResourceRecordSetsCommand, { HostedZoneId: "Z1" }).resolves({ ResourceRecordSets: [] });
    r53.on(ListResourceRecordSetsCommand, { HostedZoneId: "Z100" }).resolves({ ResourceRecordSets: [] });
    changesAccepted("INSYNC");
    const previous: DnsSaved = {
      owner: "bootlace",
      records: [],
      ptrs: [{ zoneId: "ZOLD", name: "4.1.0.10.in-addr.arpa.", values: [name], keep: [] }],
    };
    const ctx = testContext(reverseConfig, { previous });

    const outcome = await dnsAction.apply(ctx, await dnsAction.plan(ctx));

    expect(outcome.changes.map((c) => c.kind)).toEqual(["create", "create"]);
    expect((outcome.state as DnsSaved).ptrs?.map((p) => p.zoneId)).toEqual(["Z100"]);
    const stopped = await dnsAction.stop!(testContext({}), {
      owner: "bootlace",
      records: [{ zoneId: "ZOLD", name, type: "A", value: "10.0.1.5", ttl: 60, deleteOnShutdown: true }],
    });
    expect(stopped.changes).toEqual([]);
  });

  it("calls no earlier PTR stale while the Elastic IP is still to be chosen", async () => {
    zoneExists();
    reverseZones();
    const oldPtr = "4.1.0.10.in-addr.arpa.";
    zoneListing([
      { Name: oldPtr, Type: "PTR", TTL: 60, ResourceRecords: [{ Value: name }] },
      owner("bootlace", "i-0123456789abcdef0", `_bootlace-ptr.${oldPtr}`),
    ]);
    const previous: DnsSaved = {
      owner: "bootlace",
      records: [],
      ptrs: [{ zoneId: "Z100", name: "4.1.0.10.in-addr.arpa.", values: [name], keep: [] }],
    };
    const ctx = testContext(
      {
        elastic_ip: { pool: { tags: { Pool: "web" } } },
        dns: {
          reverse: true,
          records: [{ zone: "example.internal", name: "www.example.internal", value: "elastic_ip" }],
        },
      },
      { previous },
    );
    const plan = await dnsAction.plan(ctx);
    expect(plan.changes.map((c) => c.kind)).toEqual(["create"]);
  });

  it("is a configuration error when no reverse zone of the VPC holds the address", async () => {
    zoneExists();
    r53
      .on(ListHostedZonesByVPCCommand)
      .resolves({ HostedZoneSummaries: [{ HostedZoneId: "Z9", Name: "9.10.in-addr.arpa.", Owner: {} }] });
    const error = await dnsAction.plan(testContext(reverseConfig)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigErrors);
    expect((error as Error).message).toMatch(
      /^dns\.reverse: no private reverse zone \(in-addr\.arpa\) associated with vpc-0abc holds 5\.1\.0\.10\.in-addr\.arpa\./,
    );
  });
});

describe("dns action: reaping", () => {
  const shared = "api.example.internal.";
  const reapConfig = {
    dns: {
      reap: true,
      records: [
        { zone: "example.internal", name: "api.example.internal", set_identifier: "{{instance.id}}", multivalue: true },
      ],
    },
  };
  const set = (id: string, ip: string) => ({ ...a(ip, 60, shared), SetIdentifier: id, MultiValueAnswer: true });
  const own = (id: string, o = "bootlace") => owner(o, id, `${id}._bootlace-a.${shared}`);

  it("deletes exactly what a dead owner left, and leaves a running owner's, another owner's and a foreign one", async () => {
    zoneExists();
    const dead = "i-0dddddddddddddddd";
    const alive = "i-0aaaaaaaaaaaaaaaa";
    const team = "i-0bbbbbbbbbbbbbbbb";
    const me = "i-0123456789abcdef0";
    zoneListing([
      set(me, "10.0.1.5"),
      own(me),
      set(dead, "10.0.1.6"),
      own(dead),
      set(alive, "10.0.1.7"),
      own(alive),
      set(team, "10.0.1.8"),
      own(team, "team-b"),
      set("legacy", "10.0.1.9"),
    ]);
    changesAccepted("INSYNC");
    ec2.on(DescribeInstancesCommand).resolves({
      Reservations: [
        { Instances: [{ InstanceId: alive, State: { Name: "running" } }] },
        { Instances: [{ InstanceId: dead, State: { Name: "terminated" } }] },
      ],
    });
    const ctx = testContext(reapConfig, { aws: testAws({ route53: true, ec2: true }) });

    const plan = await dnsAction.plan(ctx);
    expect(plan.changes).toEqual([
      { kind: "reap", target: `${shared} A (set ${dead})`, detail: `10.0.1.6 (owner ${dead} is terminated)` },
    ]);
    const outcome = await dnsAction.apply(ctx, plan);

    expect(ec2.commandCalls(DescribeInstancesCommand)[0]!.args[0].input).toEqual({
      Filters: [{ Name: "instance-id", Values: [alive, dead] }],
    });
    expect(r53.commandCalls(ChangeResourceRecordSetsCommand).map((c) => c.args[0].input.ChangeBatch?.Changes)).toEqual([
      [
        { Action: "DELETE", ResourceRecordSet: set(dead, "10.0.1.6") },
        { Action: "DELETE", ResourceRecordSet: own(dead) },
      ],
    ]);
    expect(outcome.changes).toEqual(plan.changes);
  });

  it("treats an owner EC2 no longer knows as gone, and leaves a record set changed meanwhile", async () => {
    zoneExists();
    const gone = "i-0eeeeeeeeeeeeeeee";
    zoneListing([set(gone, "10.0.1.6"), own(gone)]);
    ec2.on(DescribeInstancesCommand).resolves({ Reservations: [] });
    r53
      .on(ChangeResourceRecordSetsCommand)
      .resolvesOnce({ ChangeInfo: { Id: "/change/C1", Status: "INSYNC", SubmittedAt: new Date() } })
      .rejects(
        Object.assign(new Error("[Tried to delete resource record set but it was not found]"), {
          name: "InvalidChangeBatch",
        }),
      );
    r53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: "/change/C1", Status: "INSYNC", SubmittedAt: new Date() } });
    const ctx = testContext(reapConfig, { aws: testAws({ route53: true, ec2: true }) });

    const plan = await dnsAction.plan(ctx);
    expect(plan.changes).toContainEqual(
      expect.objectContaining({ kind: "reap", detail: `10.0.1.6 (owner ${gone} is not found)` }),
    );
    const outcome = await dnsAction.apply(ctx, plan);

    // Its own record went in; the reap lost the race and is no failure.
    expect(outcome.failures).toBeUndefined();
    expect(outcome.changes.map((c) => c.kind)).toEqual(["create"]);
  });

  it("never passes an owner value that is not an instance id to EC2, and reaps nothing without reap: true", async () => {
    zoneExists();
    const forged = { ...own("i-0ddd"), ResourceRecords: [{ Value: ownerTxtValue("bootlace", "i-*") }] };
    zoneListing([set("i-0ddd", "10.0.1.6"), forged]);
    changesAccepted("INSYNC");
    const ctx = testContext(reapConfig, { aws: testAws({ route53: true, ec2: true }) });
    expect((await dnsAction.plan(ctx)).changes.map((c) => c.kind)).toEqual(["create"]);
    expect(ec2.commandCalls(DescribeInstancesCommand)).toHaveLength(0);
  });
});
