// Every documented user-data example through cloud-init's own code, 22.4 (Debian 12) and 25.1 (Debian 13), unpacked
// from Debian's packages and never installed (scripts/cloud-init-unpack.sh; test/support/cloud-init-user-data.py):
// the recommended forms are schema valid, cloud-init logs no warning reading them (no "degraded" status), and bootlace
// reads the same configuration from the files cloud-init's write-files module wrote as from the user-data alone. The
// older forms draw exactly the warnings docs/user-data.md says they do. And cloud-init's units order its write_files
// stage before bootlace.service.
import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { parse as parseYaml } from "yaml";
import { loadConfig } from "../../agent/config/load";
import { parseUserData } from "../../agent/config/userdata";
import { validateFile } from "../../agent/config/validate";
import { REPO_ROOT } from "../harness/run-bundle";
import { haveTool } from "../support/tools";

jest.setTimeout(300_000);

const RELEASES = [
  { release: "bookworm", version: "22.4" },
  { release: "trixie", version: "25.1" },
] as const;
type Version = (typeof RELEASES)[number]["version"];

/** What the docs say cloud-init makes of each older form (docs/user-data.md, "Older forms"). */
type Kind = "recommended" | "bootlace key" | "#bootlace" | "text/x-bootlace";

interface Example {
  name: string;
  bytes: Buffer;
  kind: Kind;
}

const DOCS = ["README.md", "docs/user-data.md", "docs/getting-started.md", "docs/configuration.md"];
const USER_DATA_HEADER = /^(#cloud-config|## template: jinja|#bootlace|#!\/bin\/(ba)?sh)\b/;
const FENCE = /^( *)```\w*\n([\s\S]*?)\n\1```/gm;

/** The fenced blocks of a markdown file, indentation removed, with the line they start on. */
function blocks(file: string): { line: number; text: string }[] {
  const markdown = readFileSync(join(REPO_ROOT, file), "utf8");
  return [...markdown.matchAll(FENCE)].map((m) => {
    const indent = m[1] ?? "";
    const text = (m[2] ?? "")
      .split("\n")
      .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
      .join("\n");
    return { line: markdown.slice(0, m.index).split("\n").length, text: `${text}\n` };
  });
}

function kindOf(text: string): Kind {
  if (text.startsWith("#bootlace")) return "#bootlace";
  if (/^bootlace\s*:/m.test(text)) return "bootlace key";
  return "recommended";
}

const FIXTURES = join(REPO_ROOT, "test/fixtures/cloud-init");
// The parts of the make-mime fixtures, which the docs show as they are. The script part edits the record the
// cloud-config part gives (dns.records.0.ttl): alone it is no valid configuration, so it is tested in its fixture.
const PARTS = new Map(
  readdirSync(join(FIXTURES, "parts")).map((name) => [readFileSync(join(FIXTURES, "parts", name), "utf8"), name]),
);
const NOT_ALONE = new Set(["boot.sh"]);
const DOCUMENTED = DOCS.flatMap((file) =>
  blocks(file)
    .filter((b) => USER_DATA_HEADER.test(b.text))
    .map((b) => ({ name: `${file}:${b.line}`, text: b.text })),
);
const EXAMPLES: Example[] = [
  ...DOCUMENTED.filter((b) => !NOT_ALONE.has(PARTS.get(b.text) ?? "")).map((b) => ({
    name: b.name,
    bytes: Buffer.from(b.text),
    kind: kindOf(b.text),
  })),
  ...[
    ["make-mime-write-files.txt", "recommended"],
    ["make-mime-cloud-config.txt", "bootlace key"],
    ["make-mime-x-bootlace.txt", "text/x-bootlace"],
  ].map(([name = "", kind]) => ({
    name: `test/fixtures/cloud-init/${name}`,
    bytes: readFileSync(join(FIXTURES, name)),
    kind: kind as Kind,
  })),
];

// The image of docs/user-data.md: the block that starts "# /etc/bootlace/conf.d/50-image.yaml".
const BAKED_PATH = "etc/bootlace/conf.d/50-image.yaml";
const BAKED = blocks("docs/user-data.md").find((b) => b.text.startsWith(`# /${BAKED_PATH}\n`))?.text;

interface CloudInitResult {
  version: string;
  warnings: string[];
  schema_errors: string[];
  written: string[];
}

const canRun = [
  haveTool("apt-get", "Debian's apt, to fetch the cloud-init packages"),
  haveTool("dpkg-deb", "apt-get install dpkg"),
  haveTool("/usr/bin/python3", "apt-get install python3: cloud-init runs on Debian's python3"),
].every(Boolean);
const describeIf = canRun ? describe : describe.skip;

const work = mkdtempSync(join(tmpdir(), "bootlace-cloud-init-"));
const sites = new Map<Version, string>();
const results = new Map<string, CloudInitResult>();
const rootOf = (version: Version, index: number): string => join(work, version, `${index}`);
const bakedOnly = join(work, "baked");

function unpack(release: string): string {
  const r = spawnSync("bash", [join(REPO_ROOT, "scripts/cloud-init-unpack.sh"), release], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cloud-init-unpack.sh ${release} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout.trim().split("\n").pop() ?? "";
}

describeIf("documented user-data through cloud-init 22.4 and 25.1", () => {
  beforeAll(() => {
    if (BAKED === undefined) throw new Error(`docs/user-data.md has no block starting "# /${BAKED_PATH}"`);
    mkdirSync(dirname(join(bakedOnly, BAKED_PATH)), { recursive: true });
    writeFileSync(join(bakedOnly, BAKED_PATH), BAKED);
    EXAMPLES.forEach((example, index) => writeFileSync(join(work, `example-${index}`), example.bytes));
    for (const { release, version } of RELEASES) {
      const site = unpack(release);
      sites.set(version, site);
      const args = EXAMPLES.map((_, index) => {
        cpSync(bakedOnly, rootOf(version, index), { recursive: true });
        return `${join(work, `example-${index}`)}:${rootOf(version, index)}`;
      });
      const script = join(REPO_ROOT, "test/support/cloud-init-user-data.py");
      const r = spawnSync("/usr/bin/python3", [script, ...args], {
        encoding: "utf8",
        env: { ...process.env, PYTHONPATH: site },
        maxBuffer: 64 * 1024 * 1024,
      });
      if (r.status !== 0) throw new Error(`cloud-init ${version} exited ${r.status}:\n${r.stderr}`);
      const list = JSON.parse(r.stdout) as CloudInitResult[];
      list.forEach((result, index) => {
        expect(result.version.startsWith(version)).toBe(true);
        results.set(`${version} ${index}`, result);
      });
    }
  });

  it("finds the examples: the docs' user-data blocks and the make-mime fixtures", () => {
    const count = (kind: Kind) => EXAMPLES.filter((e) => e.kind === kind).length;
    // README (3), user-data.md (sections 1 to 4: 5), getting-started.md (1), configuration.md (2), a fixture (1).
    expect(count("recommended")).toBeGreaterThanOrEqual(12);
    expect(count("bootlace key")).toBeGreaterThanOrEqual(2);
    expect(count("#bootlace")).toBeGreaterThanOrEqual(1);
    // The recommended MIME example's parts are shown in the docs exactly as the fixture's parts.
    const shown = DOCUMENTED.filter((b) => PARTS.has(b.text)).map((b) => PARTS.get(b.text));
    expect(shown).toEqual(expect.arrayContaining(["cloud-write-files.yaml", "boot.sh"]));
  });

  const cases = EXAMPLES.flatMap((example, index) =>
    RELEASES.map(({ version }) => ({ ...example, index, version, title: `${example.name} on ${version}` })),
  );

  describe.each(cases.filter((c) => c.kind === "recommended"))("$title", ({ bytes, index, version }) => {
    it("is schema valid, and cloud-init logs no warning", () => {
      const result = results.get(`${version} ${index}`);
      expect({ warnings: result?.warnings, schema: result?.schema_errors }).toEqual({ warnings: [], schema: [] });
    });

    it("bootlace reads the same configuration from what cloud-init wrote as from the user-data", async () => {
      const result = results.get(`${version} ${index}`);
      const root = rootOf(version, index);
      // bootlace's idea of what cloud-init writes into /etc/bootlace is cloud-init's.
      const ours = parseUserData(bytes).files.map((f) => f.path);
      expect(result?.written.filter((p) => p.startsWith("/etc/bootlace/"))).toEqual(ours);
      for (const path of ours) {
        expect(readdirSync(dirname(join(root, path)))).toContain(path.split("/").pop());
      }

      const fromDisk = await loadConfig({ root, userData: bytes });
      const fromUserData = await loadConfig({ root: bakedOnly, userData: bytes });
      expect(fromDisk.sources).toEqual(expect.arrayContaining(ours.map((p) => join(root, p))));
      expect({ profile: fromDisk.profile, config: fromDisk.config }).toEqual({
        profile: fromUserData.profile,
        config: fromUserData.config,
      });
      // It configures bootlace: more than the image's file.
      expect(fromUserData.sources.length).toBeGreaterThan(1);
      expect((await validateFile("user-data", bytes)).kind).toBe("user-data");
    });
  });

  describe.each(cases.filter((c) => c.kind !== "recommended"))("older form: $title", ({ bytes, kind, version }) => {
    it("draws the warning the docs name, and bootlace still reads it", async () => {
      const result = results.get(`${version} ${cases.find((c) => c.bytes === bytes)?.index ?? -1}`);
      if (kind === "bootlace key" && version === "22.4") {
        expect({ warnings: result?.warnings, schema: result?.schema_errors }).toEqual({ warnings: [], schema: [] });
      } else if (kind === "bootlace key") {
        expect(result?.schema_errors).toEqual([
          expect.stringContaining("Additional properties are not allowed ('bootlace' was unexpected)"),
        ]);
        expect(result?.warnings).toEqual([expect.stringContaining("cloud-config failed schema validation!")]);
      } else if (kind === "#bootlace") {
        expect(result?.warnings).toEqual([
          expect.stringContaining("Unhandled non-multipart (text/x-not-multipart) userdata"),
        ]);
      } else {
        expect(result?.warnings).toEqual([expect.stringContaining("Unhandled unknown content-type (text/x-bootlace)")]);
      }
      const loaded = await loadConfig({ root: bakedOnly, userData: bytes });
      expect(loaded.sources.some((s) => s.startsWith("user-data"))).toBe(true);
    });
  });

  it.each(RELEASES.map((r) => r.version))(
    "cloud-init %s writes its files in a stage ordered before network-online.target, which bootlace.service is after",
    (version) => {
      const pkg = (sites.get(version) ?? "").replace(/\/usr\/lib\/python3\/dist-packages$/, "");
      const cfg = parseYaml(readFileSync(join(pkg, "etc/cloud/cloud.cfg"), "utf8")) as Record<string, unknown>;
      const stageOf = (module: string) =>
        ["cloud_init_modules", "cloud_config_modules", "cloud_final_modules"].find((stage) =>
          (cfg[stage] as unknown[]).some((m) => (Array.isArray(m) ? m[0] : m) === module),
        );
      expect(stageOf("write-files")).toBe("cloud_init_modules");

      // The unit that runs cloud_init_modules: `cloud-init init` (22.4), or the single process's network stage, which
      // cloud-init-network.service starts and waits for through network.sock (24.3 and later).
      const units = ["lib/systemd/system", "usr/lib/systemd/system"].flatMap((dir) => {
        let names: string[] = [];
        try {
          names = readdirSync(join(pkg, dir)).filter((name) => name.endsWith(".service"));
        } catch {
          // this package keeps its units in the other folder
        }
        return names.map((name) => ({ name, text: readFileSync(join(pkg, dir, name), "utf8") }));
      });
      // cloud-init-network.service returns once the single process says the stage is done (network-return.sock).
      const initStage = units.filter((u) => /^ExecStart=.*(cloud-init init$|\/network\.sock )/m.test(u.text));
      expect(initStage.map((u) => u.name)).toEqual([
        version === "22.4" ? "cloud-init.service" : "cloud-init-network.service",
      ]);
      expect(initStage[0]?.text).toMatch(/^Before=network-online\.target$/m);
      expect(initStage[0]?.text).toMatch(/^Type=oneshot$/m);

      const bootlace = readFileSync(join(REPO_ROOT, "systemd/bootlace.service"), "utf8");
      const list = (key: string) =>
        [...bootlace.matchAll(new RegExp(`^${key}=(.*)$`, "gm"))].flatMap((m) => (m[1] ?? "").split(/\s+/));
      expect(list("After")).toContain("network-online.target");
      expect(list("Wants")).toContain("network-online.target");
    },
  );
});
