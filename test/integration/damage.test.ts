// A machine that failed never breaks a boot: the real bundle, IMDS from the emulator, Route 53 from moto, files on a
// temporary root. A damaged state.json is set aside (state.json.bad-<time>), said once, and run and stop go on; what
// a killed writer left is removed; a root that cannot be written is said to be read-only.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { Booted } from "../harness/booted";
import { boot, runOn, stateOf } from "../harness/booted";
import type { SimpleRecord, World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let vpcId: string;
let zoneId: string;

beforeAll(async () => {
  world = await startWorld();
  ({ vpcId } = await world.createVpc("10.30.0.0/16"));
  zoneId = await world.createHostedZone("state.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

const HOSTS = "127.0.0.1 localhost\n";
const userData = [
  "#bootlace",
  "dns:",
  "  records:",
  "    - { zone: state.internal, name: '{{instance.id}}.state.internal', delete_on_shutdown: true }",
  "files:",
  "  - path: /etc/hosts",
  "    block: '{{instance.private_ipv4}} me.state.internal'",
].join("\n");

async function booted(): Promise<Booted> {
  const b = await boot(world, userData, { vpcId });
  await writeFile(join(b.root, "etc/hosts"), HOSTS);
  return b;
}

const stateDir = (b: Booted) => join(b.root, "var/lib/bootlace");
const putState = (b: Booted, text: string) => writeFile(join(stateDir(b), "state.json"), text);
const setAside = async (b: Booted) => (await readdir(stateDir(b))).filter((n) => n.startsWith("state.json.bad-"));
const warnings = (stderr: string) => stderr.split("\n").filter((l) => l.includes("state.json is damaged"));

async function recordsOf(b: Booted): Promise<SimpleRecord[]> {
  // The record and its ownership record (named "_bootlace-a.<name>" or so).
  const id = b.instance.instanceId;
  return (await world.listRecords(zoneId)).filter((r) => r.name.startsWith(`${id}.`) || r.name.includes(`.${id}.`));
}

/** What a whole state of this instance looks like, with `saved` as given. */
const frame = (b: Booted, saved: unknown) => JSON.stringify({ version: 1, instance_id: b.instance.instanceId, saved });

describe("run with a damaged state.json", () => {
  it.each([
    ["null", () => "null"],
    ["not JSON", () => '{"version": 1, "instance'],
    ["without its frame", () => '{"saved":{"files":{"blocks":"x"}}}'],
    ["with saved.files.blocks not a list", (b: Booted) => frame(b, { files: { blocks: "x" } })],
    ["with saved.dns.records not a list", (b: Booted) => frame(b, { dns: { records: "x" } })],
  ])("%s: sets it aside, says so once, and wires as on a first boot (exit 0)", async (_, damaged) => {
    const b = await booted();
    const text = damaged(b);
    await putState(b, text);

    const first = await runOn(world, "run", b);

    expect(first.code).toBe(0);
    expect(warnings(first.stderr)).toHaveLength(1);
    const aside = await setAside(b);
    expect(aside).toHaveLength(1);
    expect(await readFile(join(stateDir(b), aside[0]!), "utf8")).toBe(text);
    expect(await readFile(join(b.root, "etc/hosts"), "utf8")).toContain(`${b.instance.privateIpv4} me.state.internal`);
    expect((await recordsOf(b)).map((r) => r.type)).toEqual(["A", "TXT"]);
    const state = await stateOf(b);
    expect(state.saved).toMatchObject({ files: { blocks: [{ path: "/etc/hosts" }] }, dns: { records: [{}] } });

    const second = await runOn(world, "run", b);
    expect(second.code).toBe(0);
    expect(warnings(second.stderr)).toEqual([]);
    expect(second.json).toMatchObject({ changes: 0 });

    const stop = await runOn(world, "stop", b);
    expect(stop.code).toBe(0);
    expect(await recordsOf(b)).toEqual([]);
  });

  it("a block path from state that leads out of --root: dropped and said; the file outside is not touched", async () => {
    const b = await booted();
    const victim = join(dirname(b.root), `${b.instance.instanceId}-victim`);
    const marked = "keep\n# BEGIN bootlace block main\nx\n# END bootlace block main\n";
    await writeFile(victim, marked);
    // Under the root's parent: what "/../<name>" joined to --root by hand would reach.
    const escaping = `/../${basename(victim)}`;
    await putState(b, frame(b, { files: { blocks: [{ path: escaping, name: "main", comment: "#" }] } }));

    const result = await runOn(world, "run", b);

    expect(result.code).toBe(0);
    expect(warnings(result.stderr)).toEqual([expect.stringMatching(/what files saved was dropped \(blocks\.0\.path/)]);
    expect(await readFile(victim, "utf8")).toBe(marked);
    expect(await setAside(b)).toHaveLength(1);
    expect((await stateOf(b)).saved).toMatchObject({ files: { blocks: [{ path: "/etc/hosts" }] } });
  });
});

describe("stop with a damaged state.json", () => {
  it.each([
    ["null", () => "null"],
    ["with saved.dns.records not a list", (b: Booted) => frame(b, { dns: { records: "x" } })],
  ])("%s: sets it aside, says what it cannot know, and exits 0", async (_, damaged) => {
    const b = await booted();
    expect((await runOn(world, "run", b)).code).toBe(0);
    const text = damaged(b);
    await putState(b, text);

    const stop = await runOn(world, "stop", b);

    expect(stop.code).toBe(0);
    expect(warnings(stop.stderr)).toHaveLength(1);
    expect(stop.stderr).toMatch(/stop: what dns made before is not known/);
    const aside = await setAside(b);
    expect(aside).toHaveLength(1);
    expect(await readFile(join(stateDir(b), aside[0]!), "utf8")).toBe(text);
    // What it could not know stays: the record is not deleted from a guess.
    expect((await recordsOf(b)).map((r) => r.type)).toEqual(["A", "TXT"]);

    const again = await runOn(world, "stop", b);
    expect(again.code).toBe(0);
    expect(warnings(again.stderr)).toEqual([]);
  });
});

describe("a writer killed mid-write", () => {
  it("its temp file beside a file goes at the next run, though that run has nothing to write to the file", async () => {
    const b = await booted();
    expect((await runOn(world, "run", b)).code).toBe(0);
    await writeFile(join(b.root, "etc/.hosts.bootlace-0123456789ab"), "half a file");
    await writeFile(join(b.root, "etc/.hosts.bootlace-bak.bootlace-ba9876543210"), "half a backup");

    const second = await runOn(world, "run", b);

    expect(second.code).toBe(0);
    expect(second.json).toMatchObject({ changes: 0 });
    expect((await readdir(join(b.root, "etc"))).sort()).toEqual(["bootlace", "hosts", "hosts.bootlace-bak"]);
  });
});

/** Whether this machine lets the test make a read-only bind mount (root, mount(8) present and permitted). */
function canBindReadOnly(): boolean {
  const probe = mkdtempSync(join(tmpdir(), "bootlace-ro-probe-"));
  try {
    mkdirSync(join(probe, "ro"));
    execFileSync("mount", ["--bind", "-o", "ro", probe, join(probe, "ro")], { stdio: "ignore" });
    execFileSync("umount", [join(probe, "ro")], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

// Without one (not root), the message mapping is still tested, by injection, in test/unit/fs-error.test.ts.
const readOnly = canBindReadOnly();
if (!readOnly) process.stderr.write("state.test: no read-only bind mount here (needs root); that case skips\n");

describe("a read-only --root", () => {
  (readOnly ? it : it.skip)("run says the filesystem is read-only (not ENOENT), exits 1, changes nothing", async () => {
    const b = await booted();
    const image = await mkdtemp(join(tmpdir(), "bootlace-ro-image-"));
    await mkdir(join(image, "etc"));
    await writeFile(join(image, "etc/hosts"), HOSTS);
    execFileSync("mount", ["--bind", "-o", "ro", image, b.root]);
    try {
      const result = await runOn(world, "run", b);

      expect(result.code).toBe(1);
      expect(result.stderr).toContain(
        `EROFS: cannot take the run lock ${b.root}/run/bootlace.lock: read-only filesystem (mkdir ${b.root}/run)`,
      );
      expect(result.stderr).not.toMatch(/ENOENT/);
      expect(await recordsOf(b)).toEqual([]);
      expect(await readFile(join(image, "etc/hosts"), "utf8")).toBe(HOSTS);
    } finally {
      execFileSync("umount", [b.root]);
      await rm(image, { recursive: true, force: true });
    }
  });
});
