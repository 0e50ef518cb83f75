import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListHostedZonesByNameCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
} from "@aws-sdk/client-route-53";
import type { ResourceRecordSet } from "@aws-sdk/client-route-53";
import { mockClient } from "aws-sdk-client-mock";
import { dnsAction } from "../../agent/actions/dns";
import type { Desired } from "../../agent/actions/dns-records";
import {
  decide,
  decodeRoute53Name,
  ownerRecordName,
  ownerTxtValue,
  parseOwnership,
} from "../../agent/actions/dns-records";
import { ConfigErrors } from "../../agent/core/errors";
import { testContext } from "../support/context";

const desired: Desired = {
  zoneId: "Z1",
  zoneName: "example.internal.",
  name: "web.example.internal.",
  type: "A",
  ttl: 60,
  value: "10.0.1.5",
  deleteOnShutdown: true,
  takeover: false,
};

const a = (value: string, ttl = 60): ResourceRecordSet => ({
  Name: "web.example.internal.",
  Type: "A",
  TTL: ttl,
  ResourceRecords: [{ Value: value }],
});
const owner = (o: string): ResourceRecordSet => ({
  Name: "_bootlace-a.web.example.internal.",
  Type: "TXT",
  TTL: 60,
  ResourceRecords: [{ Value: ownerTxtValue(o, "i-0old") }],
});

describe("decide", () => {
  it("creates a record that does not exist", () => {
    expect(decide(desired, {}, "bootlace")).toEqual({ op: "create" });
  });

  it("changes nothing when its own record already holds the value", () => {
    expect(decide(desired, { rrset: a("10.0.1.5"), ownerRrset: owner("bootlace") }, "bootlace")).toEqual({
      op: "none",
    });
  });

  it("updates its own record when the value or TTL differs", () => {
    expect(decide(desired, { rrset: a("10.0.1.9"), ownerRrset: owner("bootlace") }, "bootlace")).toEqual({
      op: "update",
      was: "10.0.1.9 ttl 60",
    });
    expect(decide(desired, { rrset: a("10.0.1.5", 300), ownerRrset: owner("bootlace") }, "bootlace").op).toBe("update");
  });

  it("refuses a record without an ownership record, naming what to do", () => {
    const d = decide(desired, { rrset: a("10.9.9.9") }, "bootlace");
    expect(d.op).toBe("refuse");
    expect(d.op === "refuse" && d.reason).toMatch(/not bootlace's \(no bootlace ownership record\).*takeover: true/);
  });

  it("refuses a record owned by another bootlace owner", () => {
    const d = decide(desired, { rrset: a("10.9.9.9"), ownerRrset: owner("team-b") }, "bootlace");
    expect(d.op === "refuse" && d.reason).toMatch(/bootlace owner "team-b"/);
  });

  it("takes over a foreign record only with takeover: true, even when the value is already right", () => {
    expect(decide({ ...desired, takeover: true }, { rrset: a("10.0.1.5") }, "bootlace")).toEqual({
      op: "update",
      was: "10.0.1.5 ttl 60",
      takeoverFrom: "no bootlace ownership record",
    });
  });

  it("leaves alias and routing-policy records alone", () => {
    const weighted = { ...a("10.0.1.5"), SetIdentifier: "blue", Weight: 10 };
    expect(decide({ ...desired, takeover: true }, { rrset: weighted }, "bootlace").op).toBe("refuse");
  });
});

describe("ownership records", () => {
  it("sits beside the record, and keeps a wildcard leftmost", () => {
    expect(ownerRecordName("Web.Example.Internal", "A")).toBe("_bootlace-a.web.example.internal.");
    expect(ownerRecordName("*.example.internal.", "AAAA")).toBe("_bootlace-aaaa-wildcard.example.internal.");
  });

  it("round-trips owner and instance, and ignores other TXT values", () => {
    expect(parseOwnership(owner("bootlace"))).toEqual({ owner: "bootlace", instance: "i-0old" });
    expect(parseOwnership({ ...owner("x"), ResourceRecords: [{ Value: '"v=spf1 -all"' }] })).toBeUndefined();
  });

  it("decodes Route 53's octal escapes", () => {
    expect(decodeRoute53Name("\\052.example.internal.")).toBe("*.example.internal.");
  });
});

describe("dns action against a mocked Route 53", () => {
  const r53 = mockClient(Route53Client);
  beforeEach(() => r53.reset());

  const config = {
    dns: {
      records: [{ zone: "example.internal", name: "{{instance.id}}.example.internal", delete_on_shutdown: true }],
    },
  };
  const name = "i-0123456789abcdef0.example.internal.";

  function zoneExists(): void {
    r53.on(ListHostedZonesByNameCommand).resolves({
      HostedZones: [
        { Id: "/hostedzone/Z1", Name: "example.internal.", CallerReference: "x", Config: { PrivateZone: true } },
        { Id: "/hostedzone/Z2", Name: "example.internal.zzz.", CallerReference: "y" },
      ],
    });
  }

  it("creates the record and its owner in one batch, then polls GetChange with growing waits until INSYNC", async () => {
    zoneExists();
    r53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [] });
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

    const batch = r53.commandCalls(ChangeResourceRecordSetsCommand)[0]!.args[0].input;
    expect(batch.HostedZoneId).toBe("Z1");
    expect(
      batch.ChangeBatch?.Changes?.map((c) => [c.Action, c.ResourceRecordSet?.Type, c.ResourceRecordSet?.Name]),
    ).toEqual([
      ["CREATE", "A", name],
      ["CREATE", "TXT", `_bootlace-a.${name}`],
    ]);
    expect(r53.commandCalls(GetChangeCommand)).toHaveLength(3);
    expect(ctx.clock.sleeps).toHaveLength(2);
    expect(ctx.clock.sleeps[1]!).toBeGreaterThanOrEqual(ctx.clock.sleeps[0]! * 0.6);
    expect(Math.max(...ctx.clock.sleeps)).toBeLessThan(30_000);
    expect(outcome.state).toMatchObject({
      records: [{ zoneId: "Z1", name, value: "10.0.1.5", deleteOnShutdown: true }],
    });
  });

  it("fails the wait at the deadline with the change id when the change stays PENDING", async () => {
    zoneExists();
    r53.on(ListResourceRecordSetsCommand).resolves({ ResourceRecordSets: [] });
    r53
      .on(ChangeResourceRecordSetsCommand)
      .resolves({ ChangeInfo: { Id: "/change/C9", Status: "PENDING", SubmittedAt: new Date() } });
    r53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: "/change/C9", Status: "PENDING", SubmittedAt: new Date() } });
    const ctx = testContext(config);
    ctx.deadline = { at: ctx.clock.now() + 20_000, signal: new AbortController().signal };

    const plan = await dnsAction.plan(ctx);
    await expect(dnsAction.apply(ctx, plan)).rejects.toThrow(/change \/change\/C9 still PENDING/);
    expect(ctx.clock.now()).toBeLessThanOrEqual(ctx.deadline.at);
  });

  it("reads again and upserts when someone created the record between plan and apply", async () => {
    zoneExists();
    r53
      .on(ListResourceRecordSetsCommand)
      .resolvesOnce({ ResourceRecordSets: [] })
      .resolvesOnce({ ResourceRecordSets: [] })
      .callsFake((input: { StartRecordType?: string }) => ({
        ResourceRecordSets:
          input.StartRecordType === "A"
            ? [{ ...a("10.0.1.77"), Name: name }]
            : [{ ...owner("bootlace"), Name: `_bootlace-a.${name}` }],
      }));
    r53
      .on(ChangeResourceRecordSetsCommand)
      .rejectsOnce(
        Object.assign(new Error("[Tried to create resource record set but it already exists]"), {
          name: "InvalidChangeBatch",
        }),
      )
      .resolves({ ChangeInfo: { Id: "/change/C2", Status: "INSYNC", SubmittedAt: new Date() } });
    r53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: "/change/C2", Status: "INSYNC", SubmittedAt: new Date() } });
    const ctx = testContext(config);

    const outcome = await dnsAction.apply(ctx, await dnsAction.plan(ctx));

    const second = r53.commandCalls(ChangeResourceRecordSetsCommand)[1]!.args[0].input;
    expect(second.ChangeBatch?.Changes?.map((c) => c.Action)).toEqual(["UPSERT", "UPSERT"]);
    expect(outcome.changes[0]?.kind).toBe("update");
    expect(outcome.changes[0]?.detail).toContain("was 10.0.1.77");
  });

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
    expect(plan.data.records[0]!.desired.zoneId).toBe("ZPRIV");
  });

  it("stop deletes a record that still holds this instance's value, and leaves one taken over by another", async () => {
    const mine = { ...a("10.0.1.5"), Name: name };
    r53.on(ListResourceRecordSetsCommand).callsFake((input: { StartRecordName?: string; StartRecordType?: string }) => {
      const takenOver = input.StartRecordName?.includes("db.");
      if (input.StartRecordType === "TXT")
        return { ResourceRecordSets: [{ ...owner("bootlace"), Name: input.StartRecordName }] };
      return { ResourceRecordSets: [takenOver ? { ...a("10.0.9.9"), Name: input.StartRecordName } : mine] };
    });
    r53
      .on(ChangeResourceRecordSetsCommand)
      .resolves({ ChangeInfo: { Id: "/change/C3", Status: "PENDING", SubmittedAt: new Date() } });
    const ctx = testContext({});
    const saved = {
      owner: "bootlace",
      records: [
        { zoneId: "Z1", name, type: "A", value: "10.0.1.5", ttl: 60, deleteOnShutdown: true },
        { zoneId: "Z1", name: "db.example.internal.", type: "A", value: "10.0.1.5", ttl: 60, deleteOnShutdown: true },
      ],
    };

    const outcome = await dnsAction.stop!(ctx, saved);

    const calls = r53.commandCalls(ChangeResourceRecordSetsCommand);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.args[0].input.ChangeBatch?.Changes?.map((c) => [c.Action, c.ResourceRecordSet?.Name])).toEqual([
      ["DELETE", name],
      ["DELETE", `_bootlace-a.${name}`],
    ]);
    expect(outcome.changes).toEqual([{ kind: "delete", target: `${name} A`, detail: "10.0.1.5" }]);
  });
});
