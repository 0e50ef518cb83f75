// {{tags.X}} end to end when IMDS exposes no tags (InstanceMetadataTags off): every action renders it from the tags
// read once with DescribeInstances, and a required render that comes out empty stops the run before any change.
import { access, readFile } from "node:fs/promises";
import { join } from "node:path";
import { DescribeAddressesCommand, type Address } from "@aws-sdk/client-ec2";
import type { ImdsInstance } from "../harness/imds-emulator";
import { makeRoot, runBootlace, type RunResult } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let nextCidr = 70;

beforeAll(async () => {
  world = await startWorld();
});

afterAll(() => world?.close());

/** One configuration that uses {{tags.Env}} in every action that renders this instance's tags. */
const config = (zone: string) => ({
  dns: { records: [{ zone, name: `{{tags.Env}}-web.${zone}` }] },
  elastic_ip: { pool: { tags: { Pool: "{{tags.Env}}" } } },
  peers: { db: { tags: { Role: "db", Env: "{{tags.Env}}" }, min: 1 } },
  files: [
    { path: "/etc/app.conf", block: "env={{tags.Env}} db={{#peers.db}}{{ip}}{{/peers.db}}\n" },
    // No peers in it: a file the peer search does not hold back.
    { path: "/etc/env", block: "ENV={{tags.Env}}\n" },
  ],
});

interface Scene {
  /** This scene's staging environment: the Env tag value of its staging pool and database. */
  env: string;
  instance: ImdsInstance;
  zone: string;
  zoneId: string;
  staging: { allocationId: string; publicIp: string };
  prod: { allocationId: string; publicIp: string };
  dbStaging: ImdsInstance;
  root: string;
  result: RunResult;
}

/**
 * A VPC of its own with a private zone, a database in each environment, an Elastic IP in each environment's pool
 * (tag values unique to this scene), and this instance — Env=staging or without an Env tag — booted with IMDS
 * exposing none of its tags; then `bootlace run`.
 */
async function scene(o: { envTag: boolean }): Promise<Scene> {
  const n = nextCidr++;
  const env = `staging${n}`;
  const { vpcId } = await world.createVpc(`10.${n}.0.0/16`);
  const zone = `tags${n}.internal`;
  const zoneId = await world.createHostedZone(zone, { privateVpcId: vpcId });
  const dbStaging = await world.launchInstance({ vpcId, tags: { Name: "db-1", Role: "db", Env: env } });
  await world.launchInstance({ vpcId, tags: { Name: "db-prod", Role: "db", Env: `prod${n}` } });
  const staging = await world.allocateAddress({ Pool: env });
  const prod = await world.allocateAddress({ Pool: `prod${n}` });
  const instance = await world.launchInstance({
    vpcId,
    tags: { Name: "web-1", Role: "web", ...(o.envTag && { Env: env }) },
  });
  const imds = await world.startImds(
    { ...instance, userData: `#bootlace\n${JSON.stringify(config(zone))}\n` },
    { tagsEnabled: false },
  );
  const root = await makeRoot();
  world.proxy.resetCalls();
  const result = await runBootlace(["run", "--json"], { imds: imds.endpoint, aws: world.proxy.endpoint, root });
  return { env, instance, zone, zoneId, staging, prod, dbStaging, root, result };
}

async function address(allocationId: string): Promise<Address> {
  const out = await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }));
  return out.Addresses![0]!;
}

const describeInstancesCalls = () =>
  world.proxy.calls.filter((c) => c.service === "ec2" && c.operation === "DescribeInstances").length;

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

it("renders {{tags.Env}} from the EC2 API in every action when IMDS exposes no tags, reading them once", async () => {
  const s = await scene({ envTag: true });

  expect(s.result.stderr).toMatch(/IMDS does not expose this instance's tags/);
  expect(s.result.code).toBe(0);

  // dns: the record under the rendered name.
  const name = `${s.env}-web.${s.zone}.`;
  const records = (await world.listRecords(s.zoneId)).filter((r) => r.type === "A");
  expect(records).toEqual([{ name, type: "A", ttl: expect.any(Number) as number, values: [s.instance.privateIpv4] }]);

  // elastic_ip: the address of the staging pool is this instance's; the prod pool's is untouched.
  expect((await address(s.staging.allocationId)).NetworkInterfaceId).toBe(s.instance.interfaceId);
  expect((await address(s.prod.allocationId)).NetworkInterfaceId || undefined).toBeUndefined();

  // peers and files: the staging database only, and the tag value itself.
  expect(await readFile(join(s.root, "etc/app.conf"), "utf8")).toContain(
    `env=${s.env} db=${s.dbStaging.privateIpv4}\n`,
  );
  expect(await readFile(join(s.root, "etc/env"), "utf8")).toContain(`ENV=${s.env}\n`);

  // DescribeInstances: the one peer set's search (its one page), and this instance's own tags read once for all four
  // actions. The peer was found and the tags rendered, so each was read at least once: two calls means once each.
  expect(describeInstancesCalls()).toBe(2);
});

it("refuses a tag the instance does not have, naming each key path, and changes nothing", async () => {
  const s = await scene({ envTag: false });

  expect(s.result.code).toBe(2);
  for (const keyPath of ["dns.records.0.name", "elastic_ip.pool.tags.Pool", "peers.db.tags.Env"]) {
    expect(s.result.stderr).toContain(`${keyPath}: "`);
  }
  expect(s.result.stderr).toMatch(/uses \{\{tags\.Env\}\}, empty for this instance \(this instance's tags: /);

  // Nothing changed: no record, no association, no file, no state; and no peer search with an empty filter.
  expect((await world.listRecords(s.zoneId)).filter((r) => r.type === "A" || r.type === "TXT")).toEqual([]);
  expect((await address(s.staging.allocationId)).NetworkInterfaceId || undefined).toBeUndefined();
  expect((await address(s.prod.allocationId)).NetworkInterfaceId || undefined).toBeUndefined();
  expect(await exists(join(s.root, "etc/app.conf"))).toBe(false);
  expect(await exists(join(s.root, "etc/env"))).toBe(false);
  expect(await exists(join(s.root, "var/lib/bootlace/state.json"))).toBe(false);
  expect(world.proxy.mutatingCalls()).toEqual([]);
  expect(describeInstancesCalls()).toBe(1);
});
