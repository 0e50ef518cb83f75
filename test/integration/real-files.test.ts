// The docs' file examples edit real files: WordPress's wp-config-sample.php (Debian 12's wordpress package, fetched by
// scripts/debian-file.sh), the pg_hba.conf Debian 12's pg_createcluster writes (test/fixtures/real), and cloud-init's
// own hosts.debian.tmpl (22.4 and 25.1, unpacked by scripts/cloud-init-unpack.sh), which cloud-init's templater then
// renders with bootlace's block in it. The configuration is taken from the docs' own blocks, as a user copies it.
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { PeerSetResult, PeersOutput } from "../../agent/actions/peers";
import { filesAction } from "../../agent/actions/files";
import type { Config } from "../../agent/config/schema";
import { validateFile } from "../../agent/config/validate";
import type { PeerView } from "../../agent/template/render";
import { REPO_ROOT } from "../harness/run-bundle";
import { testContext } from "../support/context";
import { haveTool } from "../support/tools";

jest.setTimeout(300_000);

/** The first fenced block of a markdown file that contains `needle`, indentation removed. */
function docBlock(file: string, needle: string): string {
  const markdown = readFileSync(join(REPO_ROOT, file), "utf8");
  for (const m of markdown.matchAll(/^( *)```\w*\n([\s\S]*?)\n\1```/gm)) {
    const indent = m[1] ?? "";
    const text = (m[2] ?? "")
      .split("\n")
      .map((l) => l.slice(Math.min(indent.length, l.length - l.trimStart().length)))
      .join("\n");
    if (text.includes(needle)) return `${text}\n`;
  }
  throw new Error(`${file} has no block with ${needle}`);
}

function script(name: string, ...args: string[]): string {
  const r = spawnSync("bash", [join(REPO_ROOT, "scripts", name), ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${name} ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  return r.stdout.trim().split("\n").pop() ?? "";
}

const peer = (ip: string, n: number): PeerView => ({
  id: `i-00000000000000${n.toString().padStart(3, "0")}`,
  ip,
  name: `peer-${n}`,
  az: "eu-west-1a",
  tags: { Role: "x", Env: "test" },
});
const set = (peers: PeerView[]): PeerSetResult => ({ peers, min: 0, timeout: 0, status: "ok" });
const SETS = { db: set([peer("10.0.0.5", 5)]), app: set([peer("10.0.1.7", 7), peer("10.0.1.8", 8)]) };

/** The files action on a root, with the peer sets found. Commands are the docs' business, not this test's: dropped. */
async function edit(root: string, config: Config): Promise<void> {
  const files = (config.files ?? []).map(({ on_change: _, ...file }) => file);
  const peers: PeersOutput = { sets: SETS, tags: { Env: "test" } };
  const ctx = testContext({ ...config, files }, { root, upstream: { peers } });
  const outcome = await filesAction.apply(ctx, await filesAction.plan(ctx));
  expect(outcome.failures ?? []).toEqual([]);
}

async function put(root: string, path: string, text: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), text);
}

const canFetch = [haveTool("apt-get", "Debian's apt"), haveTool("dpkg-deb", "apt-get install dpkg")].every(Boolean);
const describeIf = canFetch ? describe : describe.skip;

describeIf("the README's files example on WordPress's and Debian's own files", () => {
  it("edits wp-config.php's DB_HOST line and puts the app servers at the top of pg_hba.conf; the rest is kept", async () => {
    // The README's user-data: the configuration is the file its write_files entry writes.
    const userData = docBlock("README.md", "wp-config.php");
    const config = (await validateFile("README.md", Buffer.from(userData))).config;
    const wpConfig = readFileSync(
      script("debian-file.sh", "wordpress", "/usr/share/wordpress/wp-config-sample.php"),
      "utf8",
    );
    const pgHba = readFileSync(join(REPO_ROOT, "test/fixtures/real/pg_hba.conf"), "utf8");
    expect(wpConfig).toContain("define( 'DB_HOST', 'localhost' );\r\n"); // WordPress ships it with CRLF
    // What the README said before: a pattern without the spaces WordPress writes, which matched nothing.
    expect(wpConfig).not.toMatch(/define\('DB_HOST', '[^']*'\)/);

    const root = await mkdtemp(join(tmpdir(), "bootlace-real-"));
    await put(root, "/var/www/html/wp-config.php", wpConfig);
    await put(root, "/etc/postgresql/15/main/pg_hba.conf", pgHba);
    await put(root, "/etc/hosts", "127.0.0.1 localhost\n");
    await edit(root, config);

    expect(await readFile(join(root, "var/www/html/wp-config.php"), "utf8")).toBe(
      wpConfig.replace("define( 'DB_HOST', 'localhost' );", "define( 'DB_HOST', '10.0.0.5' );"),
    );
    expect(await readFile(join(root, "etc/postgresql/15/main/pg_hba.conf"), "utf8")).toBe(
      [
        "# BEGIN bootlace block main (managed by bootlace: edits inside are overwritten)",
        "host all all 10.0.1.7/32 scram-sha-256",
        "host all all 10.0.1.8/32 scram-sha-256",
        "# END bootlace block main",
        pgHba,
      ].join("\n"),
    );
    expect(await readFile(join(root, "etc/hosts"), "utf8")).toMatch(
      /^127\.0\.0\.1 localhost\n# BEGIN .*\n10\.0\.0\.5 db\.internal\n# END/,
    );
  });
});

describeIf("the hosts template example on cloud-init's own hosts.debian.tmpl", () => {
  const haveJinja = haveTool("/usr/bin/python3", "apt-get install python3: cloud-init's templater");
  it.each([
    ["bookworm", "22.4"],
    ["trixie", "25.1"],
  ])("%s's cloud-init %s: the block is written into the template and comes through its rendering", async (release) => {
    expect(haveJinja).toBe(true);
    const site = script("cloud-init-unpack.sh", release);
    const pkg = site.replace(/\/usr\/lib\/python3\/dist-packages$/, "");
    const template = readFileSync(join(pkg, "etc/cloud/templates/hosts.debian.tmpl"), "utf8");
    const config = (
      await validateFile("configuration.md", Buffer.from(docBlock("docs/configuration.md", "hosts.debian.tmpl")))
    ).config;

    const root = await mkdtemp(join(tmpdir(), "bootlace-hosts-"));
    await put(root, "/etc/cloud/templates/hosts.debian.tmpl", template);
    await put(root, "/etc/hosts", "127.0.0.1 localhost\n");
    await edit(root, config);
    const edited = await readFile(join(root, "etc/cloud/templates/hosts.debian.tmpl"), "utf8");
    expect(edited.startsWith(template)).toBe(true);

    // What cc_update_etc_hosts does with it at boot: templater.render_to_file(template, /etc/hosts, params).
    const render = spawnSync(
      "/usr/bin/python3",
      [
        "-c",
        "import sys; from cloudinit import templater; " +
          "sys.stdout.write(templater.render_from_file(sys.argv[1], {'hostname': 'web-1', 'fqdn': 'web-1.example.internal'}))",
        join(root, "etc/cloud/templates/hosts.debian.tmpl"),
      ],
      { encoding: "utf8", env: { ...process.env, PYTHONPATH: site } },
    );
    expect(render.stderr).toBe("");
    expect(render.stdout).toContain("127.0.1.1 web-1.example.internal web-1\n");
    expect(render.stdout).toMatch(
      /\n# BEGIN bootlace block main [^\n]*\n10\.0\.0\.5 db\.internal\n# END bootlace block main\n$/,
    );
  });
});
