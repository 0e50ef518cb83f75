// The single executable (scripts/build-sea.sh: the bundle inside an official Node binary) on a host with no Node: it
// reports its version, and plans and runs against a moto world seeded like the demo's (Elastic IP pool, target
// group, private zone), with nothing on PATH.
import { existsSync, lstatSync, readFileSync, statSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT, makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";
import { haveTool, run, sha256 } from "../support/tools";

jest.setTimeout(180_000);

const binary = join(REPO_ROOT, "dist", "bootlace-linux-x64");
const version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const ready = haveTool("npm", "Node's npm, to fetch the Node binary to embed");
const maybe = ready ? describe : describe.skip;

/** scripts/node-versions.env: NAME=VALUE lines. */
function nodeVersions(): Record<string, string> {
  const text = readFileSync(join(REPO_ROOT, "scripts/node-versions.env"), "utf8");
  return Object.fromEntries([...text.matchAll(/^(\w+)=(\S+)$/gm)].map((m): [string, string] => [m[1]!, m[2]!]));
}

let world: World;
let vpcId: string;
let zoneId: string;

beforeAll(async () => {
  if (!ready) return;
  // Built here from the current bundle, so the test never passes on a stale binary.
  run("bash", [join(REPO_ROOT, "scripts", "build-sea.sh")]);
  world = await startWorld({ route53PendingMs: 0 });
  ({ vpcId } = await world.createVpc("10.46.0.0/16"));
  zoneId = await world.createHostedZone("demo.internal", { privateVpcId: vpcId });
  await world.allocateAddress({ Pool: "demo" });
  await world.createTargetGroup({ name: "web", vpcId });
});
afterAll(() => world?.close());

const userData = `#cloud-config
bootlace:
  elastic_ip: { pool: { tags: { Pool: demo } } }
  load_balancer: { target_groups: [{ name: web }], wait_healthy: 0 }
  dns:
    records:
      - { zone: demo.internal, private: true, name: "{{instance.id}}.demo.internal", delete_on_shutdown: true }
`;

maybe("the single executable", () => {
  it("is one file that is not a script", () => {
    expect(statSync(binary).mode & 0o111).not.toBe(0);
    expect(readFileSync(binary).subarray(0, 4)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46])); // ELF
  });

  it("installs with scripts/install.sh --single-binary as /usr/bin/bootlace, a file of its own", async () => {
    const host = await mkdtemp(join(tmpdir(), "bootlace-install-sea-"));
    run("bash", [join(REPO_ROOT, "scripts/install.sh"), "--single-binary", "--no-enable", "--root", host]);
    expect(lstatSync(join(host, "usr/bin/bootlace")).isFile()).toBe(true);
    expect(sha256(join(host, "usr/bin/bootlace"))).toBe(sha256(binary));
    expect(existsSync(join(host, "usr/lib/bootlace"))).toBe(false);
    expect(existsSync(join(host, "etc/systemd/system/multi-user.target.wants"))).toBe(false);
  });

  it("runs the plain bundle with the Node it embeds too (the newest Node bootlace is tested on)", async () => {
    const { NODE_SEA } = nodeVersions();
    const node = run("bash", [join(REPO_ROOT, "scripts/fetch-node.sh"), NODE_SEA ?? "(none)"]).trim();
    const instance = await world.launchInstance({ vpcId });
    const imds = await world.startImds({ ...instance, userData });
    const plan = await runBootlace(["plan", "--json"], {
      node,
      imds: imds.endpoint,
      aws: world.proxy.endpoint,
      root: await makeRoot(),
    });
    expect(plan.stderr).not.toMatch(/error|warning/i);
    expect(plan.json).toMatchObject({ changes: 3 });
  });

  it("prints the package's version and plans, then runs, against the demo world with no Node on PATH", async () => {
    const instance = await world.launchInstance({ vpcId, tags: { Env: "demo" } });
    const imds = await world.startImds({ ...instance, userData });
    const o = {
      command: binary,
      imds: imds.endpoint,
      aws: world.proxy.endpoint,
      root: await makeRoot(),
      env: { PATH: "/nonexistent" },
    };

    const shown = await runBootlace(["--version"], o);
    expect(shown.stdout.trim()).toBe(version);

    const plan = await runBootlace(["plan", "--json"], o);
    expect(plan.stderr).not.toMatch(/error|warning/i);
    expect(plan.code).toBe(0);
    const planned = plan.json as { changes: number; actions: { name: string; changes: unknown[] }[] };
    expect(planned.changes).toBe(3);
    expect(planned.actions.filter((a) => a.changes.length > 0).map((a) => a.name)).toEqual([
      "elastic_ip",
      "load_balancer",
      "dns",
    ]);

    const applied = await runBootlace(["run", "--json"], o);
    expect(applied.code).toBe(0);
    const record = (await world.listRecords(zoneId)).find((r) => r.name === `${instance.instanceId}.demo.internal.`);
    expect(record?.values).toEqual([instance.privateIpv4]);
  });
});
