// Route 53 end to end: the real bundle, IMDS from the emulator, AWS from moto behind the fidelity proxy.
import { ChangeResourceRecordSetsCommand } from "@aws-sdk/client-route-53";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImdsEmulator, ImdsInstance } from "../harness/imds-emulator";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { SimpleRecord, World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let vpcId: string;
let zoneId: string;

beforeAll(async () => {
  world = await startWorld({ route53PendingMs: 1500 });
  ({ vpcId } = await world.createVpc("10.20.0.0/16"));
  zoneId = await world.createHostedZone("example.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

async function instanceWith(userData: string): Promise<{ instance: ImdsInstance; imds: ImdsEmulator; root: string }> {
  const instance = await world.launchInstance({ vpcId, tags: { Role: "web", Env: "test" } });
  const imds = await world.startImds({ ...instance, userData });
  return { instance, imds, root: await makeRoot() };
}

const run = (args: string[], imds: ImdsEmulator, root: string, env?: Record<string, string>) =>
  runBootlace([...args, "--json"], { imds: imds.endpoint, aws: world.proxy.endpoint, root, ...(env && { env }) });

/** A record someone else made (no bootlace ownership record), created directly in moto. */
async function createForeignRecord(name: string, value: string, ttl: number): Promise<void> {
  await world.route53.send(
    new ChangeResourceRecordSetsCommand({
      HostedZoneId: zoneId,
      ChangeBatch: {
        Changes: [
          {
            Action: "CREATE",
            ResourceRecordSet: { Name: name, Type: "A", TTL: ttl, ResourceRecords: [{ Value: value }] },
          },
        ],
      },
    }),
  );
}

/** The records whose name starts with this label or contains it after a dot (so "x" does not match "_bootlace-a.x"). */
function recordsNamed(records: SimpleRecord[], fragment: string): SimpleRecord[] {
  return records.filter((r) => r.name.startsWith(fragment) || r.name.includes(`.${fragment}`));
}

describe("bootlace run with Route 53 records", () => {
  it("upserts the instance's records, waits for INSYNC, and a second run changes nothing", async () => {
    const userData = [
      "#bootlace",
      "dns:",
      "  records:",
      "    - zone: example.internal",
      '      name: "{{instance.id}}.example.internal"',
      "      delete_on_shutdown: true",
      "    - zone: example.internal",
      '      name: "web-{{tags.Env}}.example.internal"',
      "      ttl: 30",
    ].join("\n");
    const { instance, imds, root } = await instanceWith(userData);
    world.proxy.resetCalls();

    const first = await run(["run"], imds, root);

    expect(first.stderr).not.toMatch(/error/i);
    expect(first.code).toBe(0);
    expect(first.json).toMatchObject({ command: "run", changes: 2, failed: 0 });
    const records = await world.listRecords(zoneId);
    expect(recordsNamed(records, instance.instanceId)).toEqual([
      expect.objectContaining({ type: "A", ttl: 60, values: [instance.privateIpv4] }),
      expect.objectContaining({ type: "TXT", values: [expect.stringContaining("heritage=bootlace")] }),
    ]);
    expect(recordsNamed(records, "web-test.")).toEqual([
      expect.objectContaining({
        name: "web-test.example.internal.",
        type: "A",
        ttl: 30,
        values: [instance.privateIpv4],
      }),
      expect.objectContaining({ name: "_bootlace-a.web-test.example.internal.", type: "TXT" }),
    ]);
    // The change was PENDING at first (1.5 s in the proxy): bootlace polled until INSYNC.
    const getChanges = world.proxy.calls.filter((c) => c.operation === "GetChange");
    expect(getChanges.length).toBeGreaterThanOrEqual(2);
    const state = JSON.parse(await readFile(join(root, "var/lib/bootlace/state.json"), "utf8")) as {
      instance_id: string;
      run: { exit_code: number };
    };
    expect(state).toMatchObject({ instance_id: instance.instanceId, run: { exit_code: 0 } });

    world.proxy.resetCalls();
    const plan = await run(["plan"], imds, root);
    expect(plan.code).toBe(0);
    expect(plan.json).toMatchObject({ changes: 0 });

    const second = await run(["run"], imds, root);
    expect(second.code).toBe(0);
    expect(second.json).toMatchObject({ changes: 0 });
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });

  it("stop deletes exactly the records marked delete_on_shutdown", async () => {
    const userData = [
      "#bootlace",
      "dns:",
      "  records:",
      "    - { zone: example.internal, name: 'gone-{{instance.id}}.example.internal', delete_on_shutdown: true }",
      "    - { zone: example.internal, name: 'kept-{{instance.id}}.example.internal' }",
    ].join("\n");
    const { instance, imds, root } = await instanceWith(userData);
    expect((await run(["run"], imds, root)).code).toBe(0);

    const stop = await run(["stop"], imds, root);

    expect(stop.code).toBe(0);
    expect(stop.json).toMatchObject({ command: "stop", changes: 1 });
    const records = await world.listRecords(zoneId);
    expect(recordsNamed(records, `gone-${instance.instanceId}`)).toEqual([]);
    expect(recordsNamed(records, `kept-${instance.instanceId}`).map((r) => r.type)).toEqual(["A", "TXT"]);

    const again = await run(["stop"], imds, root);
    expect(again.json).toMatchObject({ changes: 0 });
  });

  it("leaves a record owned by someone else alone, says so, still applies the others, and exits 1", async () => {
    const foreignName = `legacy-${Date.now()}.example.internal.`;
    await createForeignRecord(foreignName, "10.9.9.9", 300);
    const userData = [
      "#bootlace",
      "dns:",
      "  records:",
      `    - { zone: example.internal, name: '${foreignName}' }`,
      "    - { zone: example.internal, name: 'mine-{{instance.id}}.example.internal' }",
    ].join("\n");
    const { instance, imds, root } = await instanceWith(userData);

    const result = await run(["run"], imds, root);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${foreignName} A exists (10.9.9.9) and is not bootlace's`);
    expect(result.stderr).toContain("takeover: true");
    const records = await world.listRecords(zoneId);
    expect(recordsNamed(records, foreignName)).toEqual([expect.objectContaining({ ttl: 300, values: ["10.9.9.9"] })]);
    expect(recordsNamed(records, `mine-${instance.instanceId}`).map((r) => r.values)).toContainEqual([
      instance.privateIpv4,
    ]);
    const state = JSON.parse(await readFile(join(root, "var/lib/bootlace/state.json"), "utf8")) as {
      run: { failed: string[]; actions: { dns: { status: string; error: string } } };
    };
    expect(state.run.failed).toEqual(["dns"]);
    expect(state.run.actions.dns.error).toContain("is not bootlace's");
    // --json carries the failure as a code and a message.
    const json = result.json as { failed: number; actions: { name: string; error_code?: string; error?: string }[] };
    expect(json.failed).toBe(1);
    expect(json.actions.find((a) => a.name === "dns")).toMatchObject({
      status: "failed",
      error_code: "PartialFailure",
    });
    expect(json.actions.find((a) => a.name === "dns")?.error).toContain("takeover: true");
  });

  it("takes over a foreign record with takeover: true (failover)", async () => {
    const name = `failover-${Date.now()}.example.internal.`;
    await createForeignRecord(name, "10.9.9.8", 60);
    const { instance, imds, root } = await instanceWith(
      `#bootlace\ndns:\n  records:\n    - { zone: example.internal, name: '${name}', ttl: 10, takeover: true }\n`,
    );

    const result = await run(["run"], imds, root);

    expect(result.code).toBe(0);
    expect(result.stderr).toContain("took over");
    expect(recordsNamed(await world.listRecords(zoneId), name)).toEqual([
      expect.objectContaining({ type: "A", ttl: 10, values: [instance.privateIpv4] }),
      expect.objectContaining({ type: "TXT" }),
    ]);
  });

  it("recovers from throttling and 5xx on every Route 53 call it makes", async () => {
    const { instance, imds, root } = await instanceWith(
      "#bootlace\ndns:\n  records:\n    - { zone: example.internal, name: 'storm-{{instance.id}}.example.internal' }\n",
    );
    for (const operation of [
      "ListHostedZonesByName",
      "ListResourceRecordSets",
      "ChangeResourceRecordSets",
      "GetChange",
    ]) {
      world.proxy.inject({ service: "route53", operation, kind: "throttle", times: 1 });
      world.proxy.inject({ service: "route53", operation, kind: "5xx", times: 1 });
    }
    world.proxy.resetCalls();

    const result = await run(["run"], imds, root);

    world.proxy.clearFaults();
    expect(result.code).toBe(0);
    expect(world.proxy.calls.filter((c) => c.injected).length).toBe(8);
    expect(recordsNamed(await world.listRecords(zoneId), `storm-${instance.instanceId}`)[0]).toMatchObject({
      values: [instance.privateIpv4],
    });
  });
});

describe("bad input is refused with exit 2 and nothing changes", () => {
  const cases: [string, string, RegExp][] = [
    ["broken YAML", "#bootlace\ndns:\n  records: [\n", /user-data \(#bootlace\), line \d+/],
    ["an unknown key", "#bootlace\ndns:\n  recrods: []\n", /line 3.*dns.*recrods/],
    [
      "a bad address",
      "#bootlace\ndns:\n  records:\n    - { zone: example.internal, name: x.example.internal, value: 10.0.0.300 }\n",
      /line 4: dns\.records\.0\.value/,
    ],
    ["AWS credentials", "#bootlace\n# aws_access_key_id: AKIAIOSFODNN7EXAMPLE\ndns:\n  records: []\n", /credentials/i],
    [
      "a write_files entry bootlace would never read",
      "#cloud-config\nwrite_files:\n  - { path: /etc/bootlace/conf.d/60-x.conf, content: 'dns: {}' }\n",
      /user-data \(#cloud-config\), line 3: write_files\.0\.path: bootlace would not read/,
    ],
    [
      "a mistake in the file write_files writes",
      "#cloud-config\nwrite_files:\n  - path: /etc/bootlace/conf.d/60-x.yaml\n    content: |\n      dns:\n        recrods: []\n",
      /write_files \/etc\/bootlace\/conf\.d\/60-x\.yaml\), line 6: dns\.recrods/,
    ],
    [
      "a zone that does not exist",
      "#bootlace\ndns:\n  records:\n    - { zone: nowhere.internal, name: x.nowhere.internal }\n",
      /dns\.records\.0\.zone: no hosted zone named nowhere\.internal\./,
    ],
  ];

  it.each(cases)("%s", async (_label, userData, message) => {
    const { imds, root } = await instanceWith(userData);
    const before = await world.listRecords(zoneId);
    world.proxy.resetCalls();

    const result = await run(["run"], imds, root);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain("nothing was changed");
    expect(world.proxy.mutatingCalls()).toEqual([]);
    expect(await world.listRecords(zoneId)).toEqual(before);
  });
});
