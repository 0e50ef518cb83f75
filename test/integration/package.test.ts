// The .deb as an instance gets it: built by scripts/package.sh from the current bundle, installed by dpkg itself into
// a scratch root (maintainer scripts run outside a chroot with DPKG_ROOT set, as in a chrootless bootstrap), then
// checked for paths, modes, conffiles and enabled units; lintian's verdict on it; its units verified and their sandbox
// scored by systemd-analyze; its man page against the command's help; and the installed bootlace and init script
// wiring an instance against moto.
import { spawnSync } from "node:child_process";
import {
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { REPO_ROOT, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";
import { haveTool, run, sha256 } from "../support/tools";

jest.setTimeout(120_000);

const version = (JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as { version: string }).version;
const deb = join(REPO_ROOT, "dist", `bootlace_${version}_all.deb`);
const ready = haveTool("dpkg-deb", "apt-get install dpkg") && haveTool("dpkg", "apt-get install dpkg");
const maybe = ready ? describe : describe.skip;

let root: string;

beforeAll(async () => {
  if (!ready) return;
  run("bash", [join(REPO_ROOT, "scripts", "package.sh")]);
  root = await dpkgRoot("bootlace-deb-root-");
  mkdirSync(join(root, "run"), { recursive: true });
  // The scratch root has no nodejs package for the dependency: that alone is forced.
  run("dpkg", ["--root", root, "--force-script-chrootless", "--force-depends", "--install", deb]);
});

/** An empty folder with the dpkg database dpkg --root expects. */
async function dpkgRoot(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  mkdirSync(join(dir, "var/lib/dpkg/info"), { recursive: true });
  mkdirSync(join(dir, "var/lib/dpkg/updates"), { recursive: true });
  writeFileSync(join(dir, "var/lib/dpkg/status"), "");
  return dir;
}

const under = (path: string): string => join(root, path);
const mode = (path: string): string => (lstatSync(under(path)).mode & 0o7777).toString(8).padStart(4, "0");
/** Whether a path is there, a symbolic link included (existsSync follows links: /usr/lib/... would be the host's). */
const present = (path: string): boolean => lstatSync(path, { throwIfNoEntry: false }) !== undefined;

maybe("the .deb installed into a scratch root", () => {
  it("puts the bundle, the command, the units, the init script and the example configuration in place", () => {
    expect(sha256(under("/usr/lib/bootlace/bootlace.js"))).toBe(sha256(join(REPO_ROOT, "dist/bootlace.js")));
    expect(mode("/usr/lib/bootlace/bootlace.js")).toBe("0755");
    expect(readlinkSync(under("/usr/bin/bootlace"))).toBe("../lib/bootlace/bootlace.js");
    for (const unit of ["bootlace.service", "bootlace-watch.service"]) {
      expect(readFileSync(under(`/usr/lib/systemd/system/${unit}`), "utf8")).toBe(
        readFileSync(join(REPO_ROOT, "systemd", unit), "utf8"),
      );
      expect(mode(`/usr/lib/systemd/system/${unit}`)).toBe("0644");
    }
    expect(readFileSync(under("/etc/init.d/bootlace"), "utf8")).toBe(
      readFileSync(join(REPO_ROOT, "initd/bootlace"), "utf8"),
    );
    expect(mode("/etc/init.d/bootlace")).toBe("0755");
    expect(mode("/etc/bootlace/bootlace.yaml")).toBe("0644");
    expect(lstatSync(under("/etc/bootlace/conf.d")).isDirectory()).toBe(true);
    expect(existsSync(under("/usr/share/doc/bootlace/copyright"))).toBe(true);
    expect(gunzipSync(readFileSync(under("/usr/share/doc/bootlace/changelog.gz"))).toString()).toMatch(
      new RegExp(`^bootlace \\(${version.replace(/\./g, "\\.")}\\) `),
    );
    expect(mode("/usr/share/man/man8/bootlace.8.gz")).toBe("0644");
    expect(existsSync(under("/usr/share/doc/bootlace/examples/rc.local.snippet"))).toBe(true);
  });

  it("is recorded by dpkg with its version, its dependency on nodejs and its conffiles", () => {
    const status = readFileSync(under("/var/lib/dpkg/status"), "utf8");
    expect(status).toMatch(/^Package: bootlace$/m);
    expect(status).toMatch(/^Status: install ok installed$/m);
    expect(status).toContain(`Version: ${version}\n`);
    expect(status).toContain("Depends: nodejs (>= 18)\n");
    const conffiles = /^Conffiles:\n((?: .*\n)+)/m.exec(status)?.[1] ?? "";
    expect(
      conffiles
        .split("\n")
        .map((l) => l.trim().split(" ")[0])
        .filter(Boolean)
        .sort(),
    ).toEqual(["/etc/bootlace/bootlace.yaml", "/etc/init.d/bootlace"]);
  });

  it("enables bootlace.service and the init script's links, and leaves bootlace-watch.service off", () => {
    expect(readlinkSync(under("/etc/systemd/system/multi-user.target.wants/bootlace.service"))).toBe(
      "/usr/lib/systemd/system/bootlace.service",
    );
    expect(existsSync(under("/etc/systemd/system/multi-user.target.wants/bootlace-watch.service"))).toBe(false);
    for (const level of ["2", "3", "4", "5"]) expect(readdirSync(under(`/etc/rc${level}.d`))).toContain("S01bootlace");
    for (const level of ["0", "1", "6"]) expect(readdirSync(under(`/etc/rc${level}.d`))).toContain("K01bootlace");
  });

  it("ships maintainer scripts and an init script that pass shellcheck, as do the scripts that build it", () => {
    if (!haveTool("shellcheck", "apt-get install shellcheck")) return;
    const scripts = readdirSync(join(REPO_ROOT, "scripts")).filter((f) => f.endsWith(".sh"));
    expect(scripts).toEqual(
      expect.arrayContaining(["package.sh", "install.sh", "build-sea.sh", "boot-base.sh", "boot-image.sh"]),
    );
    // -x: follow what the scripts source (scripts/node-versions.env), named from the repository's root.
    run("shellcheck", [
      "-x",
      under("/etc/init.d/bootlace"),
      under("/var/lib/dpkg/info/bootlace.postinst"),
      under("/var/lib/dpkg/info/bootlace.postrm"),
      under("/usr/share/doc/bootlace/examples/rc.local.snippet"),
      ...scripts.map((f) => join(REPO_ROOT, "scripts", f)),
      join(REPO_ROOT, "scripts/bench/shell-wiring.sh"),
      join(REPO_ROOT, "test/fixtures/cloud-init/make.sh"),
      join(REPO_ROOT, "test/boot/guest/usr/local/lib/bootlace-boot-test/boot-check"),
    ]);
  });

  it("has units that systemd-analyze verifies with nothing to say", async () => {
    if (!haveTool("systemd-analyze", "apt-get install systemd")) return;
    const system = await verificationRoot();
    const verify = (...units: string[]) =>
      spawnSync("systemd-analyze", ["verify", `--root=${system}`, ...units], { encoding: "utf8" });

    const shipped = verify(
      "/usr/lib/systemd/system/bootlace.service",
      "/usr/lib/systemd/system/bootlace-watch.service",
    );
    expect(shipped.stdout + shipped.stderr).toBe("");
    expect(shipped.status).toBe(0);

    // The same check sees a broken unit, so an empty answer above means something.
    writeFileSync(
      join(system, "usr/lib/systemd/system/broken.service"),
      "[Service]\nType=oneshot\nExecStart=/usr/bin/no-such-bootlace run\nTimeoutStartSecs=1\n",
    );
    const broken = verify("/usr/lib/systemd/system/broken.service");
    expect(broken.stderr).toContain("Command /usr/bin/no-such-bootlace is not executable");
    expect(broken.stderr).toContain("Unknown key 'TimeoutStartSecs'");
  });

  it("is clean under lintian: no error and no warning (and lintian does flag a package without changelog or man page)", async () => {
    if (!haveTool("lintian", "apt-get install lintian")) return;
    const shipped = lintian(deb);
    expect(shipped.tags.filter((t) => /^[EW]: /.test(t))).toEqual([]);
    expect(shipped.status).toBe(0);

    // The same package less its changelog and man page: lintian must see it, or the empty answer above means nothing.
    const tree = await mkdtemp(join(tmpdir(), "bootlace-deb-bare-"));
    run("dpkg-deb", ["-R", deb, tree]);
    rmSync(join(tree, "usr/share/doc/bootlace/changelog.gz"));
    rmSync(join(tree, "usr/share/man"), { recursive: true });
    const md5sums = join(tree, "DEBIAN/md5sums");
    writeFileSync(md5sums, readFileSync(md5sums, "utf8").replace(/^.*(changelog\.gz|bootlace\.8\.gz)\n/gm, ""));
    const bare = join(tree, "..", `${tree.split("/").pop() ?? "bare"}.deb`);
    run("dpkg-deb", ["--root-owner-group", "--build", tree, bare]);
    const flagged = lintian(bare);
    expect(flagged.tags).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^E: bootlace: no-changelog /),
        expect.stringMatching(/^W: bootlace: no-manual-page \[usr\/bin\/bootlace\]/),
      ]),
    );
    expect(flagged.status).not.toBe(0);
  });

  it("runs both units sandboxed: systemd-analyze security --offline scores each 5.0 or less (9 or more without)", async () => {
    if (!haveTool("systemd-analyze", "apt-get install systemd")) return;
    const system = await verificationRoot();
    const unitText = (unit: string) => readFileSync(join(system, "usr/lib/systemd/system", unit), "utf8");
    const sandbox = sandboxOf(unitText("bootlace.service"));
    expect(sandbox).toEqual(expect.arrayContaining(["ProtectSystem=strict", "NoNewPrivileges=yes"]));
    // One sandbox for both: the watch writes the same files as the run.
    expect(sandboxOf(unitText("bootlace-watch.service"))).toEqual(sandbox);

    for (const unit of ["bootlace.service", "bootlace-watch.service"]) {
      const scored = exposure(system, `/usr/lib/systemd/system/${unit}`);
      expect([unit, scored.score <= 5.0, scored.status]).toEqual([unit, true, 0]);
    }

    // The same unit less its sandbox scores UNSAFE: the measurement sees the sandbox.
    const bare = unitText("bootlace.service")
      .split("\n")
      .filter((l) => !sandbox.includes(l))
      .join("\n");
    writeFileSync(join(system, "usr/lib/systemd/system/bootlace-bare.service"), bare);
    const unsandboxed = exposure(system, "/usr/lib/systemd/system/bootlace-bare.service");
    expect(unsandboxed.score).toBeGreaterThanOrEqual(9);
    expect(unsandboxed.status).not.toBe(0);
  });

  it("lets the units write every file the docs' examples manage; an example elsewhere shows its drop-in", () => {
    const writable = readWritePaths(readFileSync(under("/usr/lib/systemd/system/bootlace.service"), "utf8"));
    expect(writable).toEqual(expect.arrayContaining(["/etc", "/var", "/run"]));
    const docs = [
      "README.md",
      "packaging/bootlace.yaml",
      ...readdirSync(join(REPO_ROOT, "docs")).map((f) => `docs/${f}`),
    ];
    const seen: string[] = [];
    const outside: string[] = [];
    for (const doc of docs.filter((d) => /\.(md|ya?ml)$/.test(d))) {
      const text = readFileSync(join(REPO_ROOT, doc), "utf8");
      const allowed = [...writable, ...readWritePaths(text)];
      for (const [, path = ""] of text.matchAll(/^[\s#]*-?\s*path:\s*["']?(\/[^\s"'#,}]+)/gm)) {
        seen.push(path);
        if (!allowed.some((dir) => path === dir || path.startsWith(`${dir}/`))) outside.push(`${doc}: ${path}`);
      }
    }
    expect(seen).toEqual(expect.arrayContaining(["/etc/hosts", "/var/www/html/wp-config.php"]));
    expect(outside).toEqual([]);
  });

  it("has a man page, from the command's own help, that names every command and option and the writable folders", () => {
    if (!haveTool("man", "apt-get install man-db")) return;
    const page = spawnSync("man", ["--warnings", "-l", under("/usr/share/man/man8/bootlace.8.gz")], {
      encoding: "utf8",
      env: { ...process.env, MANWIDTH: "200", LC_ALL: "C.UTF-8" },
    });
    expect(page.stderr).toBe("");
    expect(page.status).toBe(0);
    const help = run("node", [under("/usr/lib/bootlace/bootlace.js"), "--help"]);
    const commands = [...help.matchAll(/^ {2}bootlace (\S+)/gm)].map((m) => m[1] ?? "");
    const options = [...help.matchAll(/^ {2}(--[\w-]+)/gm)].map((m) => m[1] ?? "");
    expect(commands).toEqual(expect.arrayContaining(["run", "plan", "stop", "validate", "watch"]));
    expect(options).toEqual(expect.arrayContaining(["--config", "--root", "--deadline"]));
    const text = page.stdout;
    expect(text).toMatch(/^BOOTLACE\(8\)/);
    expect(text).toContain(`bootlace ${version}`);
    expect(commands.filter((c) => !new RegExp(`^ {7}${c}\\b`, "m").test(text))).toEqual([]);
    expect(options.filter((o) => !new RegExp(`^ {7}${o}\\b`, "m").test(text))).toEqual([]);
    const writable = readWritePaths(readFileSync(under("/usr/lib/systemd/system/bootlace.service"), "utf8"));
    expect(text.replace(/\s+/g, " ")).toContain(`can be written under ${writable.join(", ")} only`);
  });

  it("keeps an administrator's choices across an upgrade: bootlace.service disabled, bootlace-watch.service enabled", async () => {
    const other = await dpkgRoot("bootlace-deb-upgrade-");
    const dpkg = (...args: string[]) =>
      run("dpkg", ["--root", other, "--force-script-chrootless", "--force-depends", ...args]);
    dpkg("--install", deb);
    const wants = join(other, "etc/systemd/system/multi-user.target.wants");
    expect(present(join(wants, "bootlace.service"))).toBe(true);
    // What `systemctl disable bootlace.service` and `systemctl enable bootlace-watch.service` leave.
    rmSync(join(wants, "bootlace.service"));
    symlinkSync("/usr/lib/systemd/system/bootlace-watch.service", join(wants, "bootlace-watch.service"));

    dpkg("--install", deb); // an upgrade as far as the maintainer scripts know: configure with the old version

    expect(present(join(wants, "bootlace.service"))).toBe(false);
    expect(readlinkSync(join(wants, "bootlace-watch.service"))).toBe("/usr/lib/systemd/system/bootlace-watch.service");
  });

  it("has checksums that dpkg --verify finds right", () => {
    expect(run("dpkg", ["--root", root, "--verify", "bootlace"])).toBe("");
  });

  it("purges cleanly: links, state and conffiles gone", async () => {
    const other = await dpkgRoot("bootlace-deb-purge-");
    const dpkg = (...args: string[]) => run("dpkg", ["--root", other, "--force-script-chrootless", ...args]);
    dpkg("--force-depends", "--install", deb);
    mkdirSync(join(other, "var/lib/bootlace"), { recursive: true });
    writeFileSync(join(other, "var/lib/bootlace/state.json"), "{}");

    dpkg("--purge", "bootlace");

    for (const gone of [
      "etc/systemd/system/multi-user.target.wants/bootlace.service",
      "etc/rc2.d/S01bootlace",
      "etc/init.d/bootlace",
      "etc/bootlace/bootlace.yaml",
      "var/lib/bootlace",
      "usr/bin/bootlace",
    ])
      expect([gone, present(join(other, gone))]).toEqual([gone, false]);
  });
});

describe("scripts/install.sh, for hosts without dpkg", () => {
  it("lays out the same files, enables bootlace.service and keeps an existing configuration", async () => {
    const host = await mkdtemp(join(tmpdir(), "bootlace-install-"));
    mkdirSync(join(host, "etc/bootlace"), { recursive: true });
    writeFileSync(join(host, "etc/bootlace/bootlace.yaml"), "version: 1 # mine\n");

    const said = run("bash", [join(REPO_ROOT, "scripts/install.sh"), "--root", host]);

    expect(readlinkSync(join(host, "usr/bin/bootlace"))).toBe("../lib/bootlace/bootlace.js");
    expect(sha256(join(host, "usr/lib/bootlace/bootlace.js"))).toBe(sha256(join(REPO_ROOT, "dist/bootlace.js")));
    expect(readFileSync(join(host, "etc/bootlace/bootlace.yaml"), "utf8")).toBe("version: 1 # mine\n");
    if (haveTool("systemctl", "apt-get install systemd")) {
      expect(said).toContain("bootlace.service enabled for the next boot (not started)");
      expect(readlinkSync(join(host, "etc/systemd/system/multi-user.target.wants/bootlace.service"))).toBe(
        "/usr/lib/systemd/system/bootlace.service",
      );
    }
  });
});

maybe("the installed bootlace and init script", () => {
  let world: World;
  let vpcId: string;
  let zoneId: string;

  beforeAll(async () => {
    world = await startWorld({ route53PendingMs: 0 });
    ({ vpcId } = await world.createVpc("10.44.0.0/16"));
    zoneId = await world.createHostedZone("pkg.internal", { privateVpcId: vpcId });
  });
  afterAll(() => world?.close());

  const userData =
    "#bootlace\ndns:\n  records:\n    - { zone: pkg.internal, name: '{{instance.id}}.pkg.internal', delete_on_shutdown: true }\n";

  async function instance() {
    const launched = await world.launchInstance({ vpcId });
    const imds = await world.startImds({ ...launched, userData });
    const name = `${launched.instanceId}.pkg.internal.`;
    const record = async () => (await world.listRecords(zoneId)).find((r) => r.name === name && r.type === "A");
    return { launched, imds, record };
  }

  it("reports the package's version and finds the shipped example configuration valid", async () => {
    const { imds } = await instance();
    const o = { command: under("/usr/bin/bootlace"), imds: imds.endpoint, aws: world.proxy.endpoint, root };
    const shown = await runBootlace(["--version"], o);
    expect(shown.stdout.trim()).toBe(version);
    const valid = await runBootlace(["validate"], o);
    expect(valid.stderr + valid.stdout).toContain(under("/etc/bootlace/bootlace.yaml"));
    expect(valid.code).toBe(0);
  });

  it("plans, runs and stops from /usr/bin/bootlace, with the shipped configuration under user-data", async () => {
    const { launched, imds, record } = await instance();
    const o = { command: under("/usr/bin/bootlace"), imds: imds.endpoint, aws: world.proxy.endpoint, root };

    const plan = await runBootlace(["plan", "--json"], o);
    expect(plan.stderr).not.toMatch(/error/i);
    expect(plan.json).toMatchObject({ changes: 1 });
    const applied = await runBootlace(["run", "--json"], o);
    expect(applied.code).toBe(0);
    expect((await record())?.values).toEqual([launched.privateIpv4]);
    expect(JSON.parse(readFileSync(under("/var/lib/bootlace/state.json"), "utf8"))).toMatchObject({
      instance_id: launched.instanceId,
    });
    const stopped = await runBootlace(["stop"], o);
    expect(stopped.code).toBe(0);
    expect(await record()).toBeUndefined();
  });

  it("init script: start wires, status says started, stop undoes, status says not started", async () => {
    const { launched, imds, record } = await instance();
    // runBootlace gives the script the isolated environment (endpoints on loopback, no credentials); the script
    // takes only its first argument, and its bootlace is pointed at the scratch root through its own settings.
    const script = (action: string) =>
      runBootlace([action], {
        command: under("/etc/init.d/bootlace"),
        imds: imds.endpoint,
        aws: world.proxy.endpoint,
        root,
        env: { BOOTLACE: under("/usr/bin/bootlace"), BOOTLACE_OPTS: `--root ${root}`, BOOTLACE_RUNDIR: under("/run") },
      });

    expect((await script("status")).code).toBe(3);
    const started = await script("start");
    expect(started.stdout + started.stderr).toBe("");
    expect(started.code).toBe(0);
    expect((await record())?.values).toEqual([launched.privateIpv4]);
    const status = await script("status");
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/bootlace: wired since \d{4}-\d\d-\d\dT/);
    expect(status.stdout).toContain(launched.instanceId);

    expect((await script("stop")).code).toBe(0);
    expect(await record()).toBeUndefined();
    expect((await script("status")).code).toBe(3);
  });
});

/** lintian's tags for a .deb (one "E: package: tag [where]" per line), and its exit status failing on E and W. */
function lintian(path: string): { tags: string[]; status: number | null } {
  const r = spawnSync("lintian", ["--fail-on", "error,warning", path], { encoding: "utf8" });
  if (r.error) throw r.error;
  return { tags: r.stdout.split("\n").filter((l) => /^[A-Z]: /.test(l)), status: r.status };
}

/** The sandbox lines of a unit: what systemd-analyze security scores. */
function sandboxOf(unit: string): string[] {
  const keys =
    /^(Protect\w+|Private\w+|Restrict\w+|NoNewPrivileges|ReadWritePaths|StateDirectory|LockPersonality|SystemCall\w+|CapabilityBoundingSet)=/;
  return unit.split("\n").filter((l) => keys.test(l));
}

/** The folders a unit (or a drop-in shown in a document) lets bootlace write: ReadWritePaths=, "-" (if present) dropped. */
function readWritePaths(text: string): string[] {
  return [...text.matchAll(/^ReadWritePaths=(.*)$/gm)].flatMap((m) =>
    (m[1] ?? "")
      .trim()
      .split(/\s+/)
      .map((p) => p.replace(/^-/, "")),
  );
}

/** systemd-analyze security's overall exposure (0 safest, 10 least safe) for a unit file, without a running systemd. */
function exposure(system: string, unit: string): { score: number; status: number | null } {
  const r = spawnSync(
    "systemd-analyze",
    ["security", "--offline=yes", `--root=${system}`, "--threshold=50", "--no-pager", unit],
    { encoding: "utf8" },
  );
  if (/unrecognized option|unknown option/i.test(r.stderr))
    throw new Error(`systemd-analyze cannot score a unit offline (--offline needs systemd 250 or later):\n${r.stderr}`);
  const score = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(r.stdout)?.[1];
  if (score === undefined)
    throw new Error(`systemd-analyze security gave no score for ${unit}:\n${r.stdout}${r.stderr}`);
  return { score: Number(score), status: r.status };
}

/** The package unpacked over a copy of this host's unit files, so dependencies such as network-online.target load. */
async function verificationRoot(): Promise<string> {
  const system = await mkdtemp(join(tmpdir(), "bootlace-units-"));
  run("dpkg-deb", ["-x", deb, system]);
  cpSync("/usr/lib/systemd/system", join(system, "usr/lib/systemd/system"), {
    recursive: true,
    force: false,
    verbatimSymlinks: true,
  });
  // bootlace-watch.service reloads with /bin/kill; /bin is /usr/bin on merged-/usr systems such as Debian 12.
  cpSync("/usr/bin/kill", join(system, "usr/bin/kill"));
  run("ln", ["-s", "usr/bin", join(system, "bin")]);
  return system;
}
