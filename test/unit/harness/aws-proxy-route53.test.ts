// The proxy answers Route 53 as AWS does where moto does not: whole-batch validation with AWS's messages, atomic
// batches, routing-policy rules, DELETE by set identifier touching only that record set, listings in AWS's order
// paged by set identifier, unique change ids that stay PENDING for the configured time, and NoSuchChange.
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  ListResourceRecordSetsCommand,
  Route53Client,
  type Change,
  type ResourceRecordSet,
} from "@aws-sdk/client-route-53";
import { startAwsProxy, type AwsProxy } from "../../harness/aws-proxy";
import { startWorld, TEST_CREDENTIALS, type World } from "../../harness/world";

jest.setTimeout(30_000);

let world: World;
let viaProxy: Route53Client;
let zoneId: string;
let zoneCount = 0;

beforeAll(async () => {
  world = await startWorld();
  viaProxy = new Route53Client({
    endpoint: world.proxy.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
});
afterAll(async () => {
  viaProxy?.destroy();
  await world?.close();
});

// A fresh zone per test, seeded directly in moto with one simple and two weighted A records.
beforeEach(async () => {
  zoneId = await world.createHostedZone(`z${++zoneCount}.example.com`);
  await world.route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: {
        Changes: [
          create(a(`web.z${zoneCount}.example.com`, 60, "10.0.0.1")),
          create({ ...a(`w.z${zoneCount}.example.com`, 60, "10.0.1.1"), SetIdentifier: "one", Weight: 10 }),
          create({ ...a(`w.z${zoneCount}.example.com`, 60, "10.0.1.2"), SetIdentifier: "two", Weight: 20 }),
        ],
      },
    }),
  );
  world.proxy.resetCalls();
});

const name = (label: string) => `${label}.z${zoneCount}.example.com.`;
const a = (n: string, ttl: number, ...values: string[]): ResourceRecordSet => ({
  Name: n,
  Type: "A",
  TTL: ttl,
  ResourceRecords: values.map((Value) => ({ Value })),
});
const create = (r: ResourceRecordSet): Change => ({ Action: "CREATE", ResourceRecordSet: r });
const del = (r: ResourceRecordSet): Change => ({ Action: "DELETE", ResourceRecordSet: r });
const upsert = (r: ResourceRecordSet): Change => ({ Action: "UPSERT", ResourceRecordSet: r });
const change = (Changes: Change[], client = viaProxy) =>
  client.send(new ChangeResourceRecordSetsCommand({ HostedZoneId: zoneId, ChangeBatch: { Changes } }));

/**
 * The rejection's name, AWS message and status; fails the test if the batch went through. The message is read from
 * `Error.Message`: with AWS's wire shape, SDK 3.967 leaves `err.message` as "UnknownError" for modeled Route 53 errors.
 */
async function rejection(p: Promise<unknown>): Promise<[string, string, number | undefined]> {
  try {
    await p;
  } catch (e) {
    const err = e as Error & { $metadata?: { httpStatusCode?: number }; Error?: { Message?: string } };
    return [err.name, err.Error?.Message ?? err.message, err.$metadata?.httpStatusCode];
  }
  throw new Error("expected the batch to be rejected");
}

describe("ChangeResourceRecordSets validation", () => {
  it("rejects CREATE of an existing name+type, even with new values, and applies nothing of the batch", async () => {
    const before = await world.listRecords(zoneId);
    const answer = await rejection(
      change([create(a(name("new"), 60, "10.0.0.9")), create(a(name("web").toUpperCase(), 300, "10.0.0.2"))]),
    );
    expect(answer).toEqual([
      "InvalidChangeBatch",
      `[Tried to create resource record set [name='${name("web")}', type='A'] but it already exists]`,
      400,
    ]);
    expect(await world.listRecords(zoneId)).toEqual(before);
  });

  it("rejects CREATE of an existing weighted rrset by its SetIdentifier", async () => {
    const answer = await rejection(
      change([create({ ...a(name("w"), 60, "10.0.1.9"), SetIdentifier: "two", Weight: 5 })]),
    );
    expect(answer[1]).toBe(
      `[Tried to create resource record set [name='${name("w")}', type='A', set-identifier='two'] but it already exists]`,
    );
  });

  it("rejects DELETE of a missing rrset and DELETE with stale values, each with its message", async () => {
    const before = await world.listRecords(zoneId);
    const answer = await rejection(
      change([
        del(a(name("gone"), 60, "10.0.0.1")),
        del(a(name("web"), 300, "10.0.0.1")), // TTL differs
        del({ ...a(name("w"), 60, "10.0.1.2"), SetIdentifier: "two", Weight: 99 }), // weight differs
      ]),
    );
    expect(answer).toEqual([
      "InvalidChangeBatch",
      `[Tried to delete resource record set [name='${name("gone")}', type='A'] but it was not found, ` +
        `Tried to delete resource record set [name='${name("web")}', type='A'] but the values provided do not match the current values, ` +
        `Tried to delete resource record set [name='${name("w")}', type='A', set-identifier='two'] but the values provided do not match the current values]`,
      400,
    ]);
    expect(await world.listRecords(zoneId)).toEqual(before);
  });

  it("rejects DELETE whose record values differ from the current ones (moto checks history instead)", async () => {
    const answer = await rejection(change([del(a(name("web"), 60, "10.0.0.2"))]));
    expect(answer[1]).toContain("but the values provided do not match the current values");
    expect((await world.listRecords(zoneId)).filter((r) => r.name === name("web"))).toHaveLength(1);
  });

  it("rejects the same rrset twice in one batch (moto would create duplicates)", async () => {
    const before = await world.listRecords(zoneId);
    const answer = await rejection(
      change([create(a(name("dup"), 60, "10.0.0.5")), create(a(name("dup"), 60, "10.0.0.6"))]),
    );
    expect(answer).toEqual([
      "InvalidChangeBatch",
      `[The request contains an invalid set of changes for a resource record set 'A ${name("dup")}']`,
      400,
    ]);
    expect(await world.listRecords(zoneId)).toEqual(before);
  });

  it("rejects a name outside the zone without applying the rest (moto keeps the earlier changes)", async () => {
    const before = await world.listRecords(zoneId);
    const answer = await rejection(
      change([create(a(name("ok"), 60, "10.0.0.7")), create(a("x.other.org", 60, "10.0.0.8"))]),
    );
    expect(answer[1]).toBe(`[RRSet with DNS name x.other.org. is not permitted in zone z${zoneCount}.example.com.]`);
    expect(await world.listRecords(zoneId)).toEqual(before);
  });

  it("rejects a CNAME beside other records of the same name", async () => {
    const answer = await rejection(
      change([
        create({ Name: name("web"), Type: "CNAME", TTL: 60, ResourceRecords: [{ Value: "elsewhere.example.com" }] }),
      ]),
    );
    expect(answer[1]).toContain(`RRSet of type CNAME with DNS name ${name("web")} is not permitted`);
  });

  it("sends the message as AWS does, so the SDK keeps it in err.Error.Message, not err.message", async () => {
    // moto also sends a lower-case <message>, which hides this SDK behaviour; the agent must not rely on err.message.
    const err = (await change([del(a(name("gone"), 60, "10.0.0.1"))]).catch((e: unknown) => e)) as Error & {
      Error?: { Message?: string };
    };
    expect(err.message).toBe("UnknownError");
    expect(err.Error?.Message).toContain("but it was not found");
  });

  it("is not retried by the SDK: InvalidChangeBatch is a client error", async () => {
    const standard = new Route53Client({
      endpoint: world.proxy.endpoint,
      region: world.region,
      credentials: TEST_CREDENTIALS,
    });
    await rejection(change([create(a(name("web"), 60, "10.0.0.1"))], standard));
    standard.destroy();
    expect(world.proxy.calls.map((c) => [c.operation, c.status])).toEqual([["ChangeResourceRecordSets", 400]]);
  });
});

describe("ChangeResourceRecordSets application", () => {
  it("applies a valid batch: CREATE, UPSERT, DELETE matched case-insensitively, DELETE+CREATE replacement", async () => {
    await change([
      create(a(name("Api"), 30, "10.0.2.1", "10.0.2.2")),
      upsert({ ...a(name("w"), 120, "10.0.1.3"), SetIdentifier: "one", Weight: 10 }),
      del({ ...a(name("W").toUpperCase(), 60, "10.0.1.2"), SetIdentifier: "two", Weight: 20 }),
      del(a(name("web"), 60, "10.0.0.1")),
      create(a(name("web"), 60, "10.0.0.2")),
    ]);
    const records = (await world.listRecords(zoneId)).filter((r) => r.type === "A");
    expect(records).toEqual(
      expect.arrayContaining([
        { name: name("api"), type: "A", ttl: 30, values: ["10.0.2.1", "10.0.2.2"] },
        { name: name("w"), type: "A", ttl: 120, values: ["10.0.1.3"], setIdentifier: "one", weight: 10 },
        { name: name("web"), type: "A", ttl: 60, values: ["10.0.0.2"] },
      ]),
    );
    expect(records).toHaveLength(3);
  });

  it("answers with a unique change id, PENDING, instead of moto's fixed INSYNC one", async () => {
    const first = await change([create(a(name("p1"), 60, "10.0.3.1"))]);
    const second = await change([create(a(name("p2"), 60, "10.0.3.2"))]);
    expect(first.ChangeInfo?.Status).toBe("PENDING");
    expect(first.ChangeInfo?.Id).toMatch(/^\/change\/C[0-9A-Z]{13}$/);
    expect(first.ChangeInfo?.Id).not.toBe("/change/C2682N5HXP0BZ4");
    expect(second.ChangeInfo?.Id).not.toBe(first.ChangeInfo?.Id);
  });
});

describe("routing-policy records (moto accepts any mix, and its DELETE by set identifier deletes every record set carrying it)", () => {
  const mv = (label: string, id: string, value: string, type: "A" | "AAAA" = "A"): ResourceRecordSet => ({
    Name: name(label),
    Type: type,
    TTL: 60,
    SetIdentifier: id,
    MultiValueAnswer: true,
    ResourceRecords: [{ Value: value }],
  });

  it("DELETE of one set identifier's record set leaves the other names and types that carry it", async () => {
    await change([
      create(mv("api", "i-1", "10.0.5.1")),
      create(mv("api", "i-2", "10.0.5.2")),
      create(mv("api", "i-1", "fd00::1", "AAAA")),
      create(mv("db", "i-1", "10.0.5.1")),
    ]);

    await change([del(mv("api", "i-1", "10.0.5.1"))]);

    const left = (await world.listRecords(zoneId)).filter((r) => r.setIdentifier !== undefined);
    expect(left.map((r) => `${r.name} ${r.type} ${r.setIdentifier} ${r.values.join(",")}`).sort()).toEqual([
      `${name("api")} A i-2 10.0.5.2`,
      `${name("api")} AAAA i-1 fd00::1`,
      `${name("db")} A i-1 10.0.5.1`,
      `${name("w")} A one 10.0.1.1`,
      `${name("w")} A two 10.0.1.2`,
    ]);
  });

  it("refuses a routing-policy record beside a simple one, mixed policies, and a second PRIMARY", async () => {
    const before = await world.listRecords(zoneId);
    const mixed = await rejection(change([create(mv("web", "i-1", "10.0.5.1"))]));
    expect(mixed[0]).toBe("InvalidChangeBatch");
    expect(mixed[1]).toContain(
      `RRSet with DNS name ${name("web")}, type A cannot be created as a non-routing-policy set`,
    );
    const policies = await rejection(change([create(mv("w", "three", "10.0.1.3"))]));
    expect(policies[1]).toContain("routing policies (multivalue, weighted) are mixed");
    const failover = (id: string, role: string, value: string): ResourceRecordSet => ({
      ...a(name("f"), 60, value),
      SetIdentifier: id,
      Failover: role as "PRIMARY",
    });
    await change([create(failover("p", "PRIMARY", "10.0.6.1")), create(failover("s", "SECONDARY", "10.0.6.2"))]);
    const second = await rejection(change([create(failover("p2", "PRIMARY", "10.0.6.3"))]));
    expect(second[1]).toContain("cannot have more than one PRIMARY failover record");
    expect((await world.listRecords(zoneId)).filter((r) => r.name !== name("f"))).toEqual(before);
  });
});

describe("ListResourceRecordSets", () => {
  const list = (input: { name?: string; type?: string; id?: string; max?: number }) =>
    viaProxy.send(
      new ListResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        ...(input.name !== undefined && { StartRecordName: input.name }),
        ...(input.type !== undefined && { StartRecordType: input.type as "A" }),
        ...(input.id !== undefined && { StartRecordIdentifier: input.id }),
        ...(input.max !== undefined && { MaxItems: input.max }),
      }),
    );
  const show = (r: ResourceRecordSet) => `${r.Name} ${r.Type}${r.SetIdentifier ? ` ${r.SetIdentifier}` : ""}`;

  it("sorts by reversed labels with the trailing dot, then type, from the position given", async () => {
    await change([
      create({ Name: `_bootlace-a.${name("web")}`, Type: "TXT", TTL: 60, ResourceRecords: [{ Value: '"x"' }] }),
      create(a(name("web-v2"), 60, "10.0.7.1")),
      create(a(`0.${name("web")}`, 60, "10.0.7.2")),
      create(a(`zz.${name("web")}`, 60, "10.0.7.3")),
      create({ Name: name("web"), Type: "AAAA", TTL: 60, ResourceRecords: [{ Value: "fd00::7" }] }),
    ]);

    const page = await list({ name: name("web") });

    // web-v2 sorts before web: "com.example.z1.web-v2." < "com.example.z1.web." ('-' before '.').
    expect(page.ResourceRecordSets?.map(show)).toEqual([
      `${name("web")} A`,
      `${name("web")} AAAA`,
      `0.${name("web")} A`,
      `_bootlace-a.${name("web")} TXT`,
      `zz.${name("web")} A`,
    ]);
    expect(page.IsTruncated).toBe(false);
    expect((await list({ name: name("web"), type: "AAAA", max: 1 })).ResourceRecordSets?.map(show)).toEqual([
      `${name("web")} AAAA`,
    ]);
    expect((await list({})).ResourceRecordSets?.[0]?.Type).toBe("NS");
  });

  it("pages inside one name and type by set identifier, never repeating or skipping one", async () => {
    const ids = ["i-0a", "i-0b", "i-0c", "i-0d", "i-0e"];
    await change(
      ids.map((id, i) =>
        create({ ...a(name("fleet"), 60, `10.0.8.${i + 1}`), SetIdentifier: id, MultiValueAnswer: true }),
      ),
    );
    const seen: string[] = [];
    let start: { name?: string; type?: string; id?: string } = { name: name("fleet") };
    for (let pages = 0; pages < 10; pages++) {
      const page = await list({ ...start, max: 2 });
      seen.push(
        ...(page.ResourceRecordSets ?? []).filter((r) => r.Name === name("fleet")).map((r) => r.SetIdentifier ?? ""),
      );
      if (!page.IsTruncated || page.NextRecordName !== name("fleet")) break;
      expect(page.NextRecordIdentifier).toBeDefined();
      start = { name: page.NextRecordName, type: page.NextRecordType!, id: page.NextRecordIdentifier! };
    }
    expect(seen).toEqual(ids);
  });

  it("refuses a type without a name, as AWS does", async () => {
    const answer = await rejection(list({ type: "A" }));
    expect([answer[0], answer[2]]).toEqual(["InvalidInput", 400]);
  });
});

describe("GetChange", () => {
  let clock = 0;
  let proxy: AwsProxy;
  let client: Route53Client;
  beforeAll(async () => {
    proxy = await startAwsProxy({ target: world.moto.endpoint, route53PendingMs: 5_000, now: () => clock });
    client = new Route53Client({
      endpoint: proxy.endpoint,
      region: world.region,
      credentials: TEST_CREDENTIALS,
      maxAttempts: 1,
    });
  });
  afterAll(async () => {
    client?.destroy();
    await proxy?.close();
  });

  const status = async (id: string) => (await client.send(new GetChangeCommand({ Id: id }))).ChangeInfo?.Status;

  it("stays PENDING until route53PendingMs has passed, then INSYNC", async () => {
    clock = 1_000_000;
    const submitted = await change([create(a(name("sync"), 60, "10.0.4.1"))], client);
    const id = submitted.ChangeInfo?.Id ?? "";
    expect(submitted.ChangeInfo?.SubmittedAt).toEqual(new Date(1_000_000));
    expect(await status(id)).toBe("PENDING");
    clock += 4_999;
    expect(await status(id)).toBe("PENDING");
    clock += 1;
    expect(await status(id)).toBe("INSYNC");
  });

  it("follows setRoute53PendingMs for changes already submitted", async () => {
    clock = 2_000_000;
    const id = (await change([create(a(name("later"), 60, "10.0.4.2"))], client)).ChangeInfo?.Id ?? "";
    clock += 100;
    expect(await status(id)).toBe("PENDING");
    proxy.setRoute53PendingMs(50);
    expect(await status(id)).toBe("INSYNC");
    proxy.setRoute53PendingMs(5_000);
  });

  it("answers NoSuchChange (404) for an id it never issued", async () => {
    const answer = await rejection(client.send(new GetChangeCommand({ Id: "/change/C0000000000000" })));
    expect([answer[0], answer[2]]).toEqual(["NoSuchChange", 404]);
    // moto answers INSYNC for moto's own fixed id; AWS never issued it.
    expect((await rejection(client.send(new GetChangeCommand({ Id: "C2682N5HXP0BZ4" }))))[0]).toBe("NoSuchChange");
  });
});
