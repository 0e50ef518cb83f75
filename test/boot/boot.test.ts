// bootlace at boot, for real: a Debian 12 guest (scripts/boot-image.sh: debootstrap, bootlace from the project's
// .deb) boots under QEMU; bootlace.service runs from the packaged unit against IMDS at 169.254.169.254 (the host's
// IMDS emulator, serving an instance seeded in moto) and the AWS APIs at its private endpoint (the host's AWS
// fidelity proxy), with the instance profile's credentials. The host then checks the world and the files inside the
// guest; power-offs run (or, forced, skip) the stop path; a second boot of the same disk changes nothing; the init.d
// path starts and stops it too; and deliberate breaks make the checks fail with messages that say what broke.
// Run with `npm run test:boot` (root: the image is built with debootstrap and chroot). Timings are printed, never
// asserted.
import { DescribeAddressesCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { ImdsEmulator, ImdsInstance } from "../harness/imds-emulator";
import { freePort } from "../harness/ports";
import { REPO_ROOT } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";
import { run } from "../support/tools";
import { accelerator, createOverlay, startVm, type Variant, type Vm } from "./vm";

const MINUTE = 60_000;
// Every step waits on an emulated machine; each wait has its own, shorter bound inside.
jest.setTimeout(10 * MINUTE);
const RUN_DIR = join(REPO_ROOT, ".cache", "boot", "last-run");

/** QEMU and the image tools, installed by scripts/ci-deps.sh when missing; a loud skip only where that cannot be. */
function prerequisites(): boolean {
  const tools = ["qemu-system-x86_64", "qemu-img", "socat", "debootstrap", "mke2fs", "zstd", "dpkg-deb"];
  const missing = (): string[] => tools.filter((t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0);
  const isRoot = process.getuid?.() === 0;
  if (missing().length > 0 && isRoot)
    spawnSync("bash", [join(REPO_ROOT, "scripts", "ci-deps.sh")], { stdio: "inherit" });
  const still = missing();
  const reason =
    still.length > 0
      ? `${still.join(", ")} not found and could not be installed (scripts/ci-deps.sh, as root, installs them)`
      : !isRoot
        ? "the guest image is built with debootstrap and chroot: run as root"
        : undefined;
  if (reason === undefined) return true;
  if (process.env.CI) throw new Error(`boot test: ${reason}: CI must have them`);
  const line = "*".repeat(100);
  console.warn(`\n${line}\n*** SKIPPED: the boot test did not run: ${reason}\n${line}\n`);
  return false;
}

const ready = prerequisites();
const maybe = ready ? describe : describe.skip;

const USER_DATA = `#cloud-config
bootlace:
  elastic_ip:
    pool: { tags: { Pool: boot } }
  load_balancer:
    target_groups: [{ name: web }]
    wait_healthy: 60
  dns:
    records:
      - { zone: boot.internal, private: true, name: www.boot.internal, value: elastic_ip, delete_on_shutdown: true }
      - { zone: boot.internal, private: true, name: "{{instance.id}}.boot.internal" }
  peers:
    db: { tags: { Role: db, Env: "{{tags.Env}}" }, min: 1, timeout: 60 }
    app: { tags: { Role: app, Env: "{{tags.Env}}" } }
  files:
    - path: /etc/hosts
      block: "{{#peers.db}}{{ip}} db.boot.internal {{name}}\\n{{/peers.db}}"
    - path: /srv/app/config.php
      replace: [{ match: "define\\\\('DB_HOST', '[^']*'\\\\)", with: "define('DB_HOST', '{{peers.db.0.ip}}')" }]
    - path: /etc/postgresql/15/main/pg_hba.conf
      block: "{{#peers.app}}host all all {{ip}}/32 scram-sha-256\\n{{/peers.app}}"
      position: top
      check: "test -s {{staged}}"
      on_change: logger -t boot-test "postgresql reloaded"
    - path: /usr/local/etc/app/peers.conf
      block: "{{#peers.db}}db {{ip}}\\n{{/peers.db}}"
`;
/** Outside every folder the unit's sandbox lets bootlace write, and not added by the guest's drop-in. */
const OUTSIDE = "/usr/local/etc/outside.conf";

interface Seeded {
  instance: ImdsInstance;
  db: ImdsInstance;
  apps: ImdsInstance[];
  eip: { allocationId: string; publicIp: string };
  targetGroup: string;
  zoneId: string;
  imds: ImdsEmulator;
}

/** What one boot left: the guest's report in the share, the console, and the host's timings. */
interface Boot {
  name: string;
  vm: Vm;
  dir: string;
  /** `systemctl show` of bootlace.service, multi-user.target and network-online.target, by unit. */
  units: Record<string, Record<string, string>>;
  journal: string;
  /** Wall time from QEMU's start to the guest's report. */
  reportMs: number;
  file(path: string): string;
}

interface Figure {
  boot: string;
  reportS: number;
  exitS?: number;
  wiredS?: number;
  runS?: number;
}

let images: string;
let world: World;
let seeded: Seeded;
const figures: Figure[] = [];
const brokenSaid: string[] = [];
/** Every VM started, so that none outlives the test whatever failed (kill() passes over those that exited). */
const vms: Vm[] = [];
let imageFigure = "";

maybe("bootlace in a Debian 12 guest under QEMU", () => {
  beforeAll(async () => {
    rmSync(RUN_DIR, { recursive: true, force: true });
    mkdirSync(RUN_DIR, { recursive: true });
    run("bash", [join(REPO_ROOT, "scripts", "package.sh")]);
    const started = Date.now();
    const cached = spawnSync("bash", [join(REPO_ROOT, "scripts", "boot-image.sh")], { encoding: "utf8" });
    if (cached.status !== 0) throw new Error(`scripts/boot-image.sh failed:\n${cached.stderr}`);
    images = join(REPO_ROOT, cached.stdout.trim().split("\n").pop() ?? "");
    imageFigure =
      `image ${images.replace(`${REPO_ROOT}/`, "")}: ready in ${((Date.now() - started) / 1000).toFixed(1)} s` +
      `${cached.stderr.includes("debootstrap") ? " (base built by debootstrap)" : cached.stderr ? " (from the cached base)" : " (cached)"}`;
    world = await startWorld({ route53PendingMs: 1500 });
    // As on AWS: a new target is "initial" for a while, a deregistered one drains.
    world.proxy.elbv2.setTargetHealth({ initialMs: 3000 });
    world.proxy.elbv2.setDrainMs(2000);
    seeded = await seed(world);
  }, 20 * MINUTE);

  afterAll(async () => {
    await Promise.all(vms.map((vm) => vm.kill()));
    await world?.close();
    printFigures();
  });

  describe("first boot (systemd, a fresh disk)", () => {
    let boot: Boot;
    beforeAll(async () => {
      createOverlay(images, "systemd", join(RUN_DIR, "disk.qcow2"));
      boot = await bootGuest("first", "systemd", { overlay: join(RUN_DIR, "disk.qcow2") });
    }, 10 * MINUTE);

    it("runs bootlace.service from the packaged unit at boot, after the network is online and before multi-user.target", () => {
      const bootlace = boot.units["bootlace.service"] ?? {};
      // The .deb's /usr/lib/systemd/system, which systemd names by its /lib path on Debian 12 (/lib is /usr/lib).
      expect(bootlace.FragmentPath).toMatch(/^(\/usr)?\/lib\/systemd\/system\/bootlace\.service$/);
      // In its sandbox, with the guest's drop-in adding the folder of a file outside the unit's writable ones.
      expect(bootlace.ProtectSystem).toBe("strict");
      expect(bootlace.DropInPaths).toBe("/etc/systemd/system/bootlace.service.d/write-paths.conf");
      expect(bootlace.ReadWritePaths?.split(" ")).toEqual(
        expect.arrayContaining(["/etc", "/var", "/usr/local/etc/app"]),
      );
      expect(unitProblems(boot)).toEqual([]);
      const at = (unit: string, key: string): number => Number(boot.units[unit]?.[key] ?? 0);
      expect(at("bootlace.service", "InactiveExitTimestampMonotonic")).toBeGreaterThanOrEqual(
        at("network-online.target", "ActiveEnterTimestampMonotonic"),
      );
      expect(at("bootlace.service", "ExecMainExitTimestampMonotonic")).toBeGreaterThan(0);
      expect(at("multi-user.target", "ActiveEnterTimestampMonotonic")).toBeGreaterThanOrEqual(
        at("bootlace.service", "ExecMainExitTimestampMonotonic"),
      );
    });

    it("wires the instance: the address, the target, the records, the files (with their on_change), the summary", async () => {
      expect(await wiringProblems(boot)).toEqual([]);
      expect(summaryOf(boot.journal)?.changes).toBeGreaterThan(0);
      expect(boot.journal).toMatch(/ boot-test\[\d+\]: postgresql reloaded$/m);
    });

    it("a forced power-off stops no unit: the wiring stays in place for the next boot", async () => {
      const exit = await boot.vm.powerOff("force", 3 * MINUTE);
      figureOf(boot).exitS = exit.ms / 1000;
      expect(await targetsOf()).toEqual([`${seeded.instance.instanceId}:healthy`]);
      expect(await recordOf("www.boot.internal.")).toEqual([seeded.eip.publicIp]);
    });
  });

  describe("second boot of the same disk in the same world", () => {
    let boot: Boot;
    beforeAll(async () => {
      world.proxy.resetCalls();
      boot = await bootGuest("second", "systemd", { overlay: join(RUN_DIR, "disk.qcow2") });
    }, 10 * MINUTE);

    it("changes nothing: bootlace's summary says 0 changes and no AWS call changed anything", async () => {
      expect(unitProblems(boot)).toEqual([]);
      expect(summaryOf(boot.journal)).toMatchObject({ changes: 0 });
      expect(world.proxy.mutatingCalls()).toEqual([]);
      expect(await wiringProblems(boot)).toEqual([]);
    });

    it("systemctl poweroff runs ExecStop: deregistered, the delete_on_shutdown record deleted, the other kept", async () => {
      const exit = await boot.vm.powerOff("graceful", 5 * MINUTE);
      figureOf(boot).exitS = exit.ms / 1000;
      expect(await unwiredProblems(boot.vm.consoleText())).toEqual([]);
      expect(await recordOf(`${seeded.instance.instanceId}.boot.internal.`)).toEqual([seeded.instance.privateIpv4]);
    });
  });

  describe("the init.d path (the same image, the unit disabled, the LSB script run by systemd's sysv generator)", () => {
    let boot: Boot;
    beforeAll(async () => {
      boot = await bootGuest("init.d", "initd", {});
    }, 10 * MINUTE);

    it("the script starts bootlace at boot and it wires the instance", async () => {
      expect(boot.units["bootlace.service"]).toMatchObject({
        SourcePath: "/etc/init.d/bootlace",
        FragmentPath: "/run/systemd/generator.late/bootlace.service",
      });
      expect(unitProblems(boot)).toEqual([]);
      expect(boot.journal).toMatch(/bootlace\[\d+\]: bootlace: wiring this instance/);
      expect(boot.journal).toMatch(/bootlace\[\d+\]: bootlace: run exited 0/);
      expect(await wiringProblems(boot)).toEqual([]);
    });

    it("the script stops it at power-off: deregistered, the delete_on_shutdown record deleted", async () => {
      const exit = await boot.vm.powerOff("graceful", 5 * MINUTE);
      figureOf(boot).exitS = exit.ms / 1000;
      const console = boot.vm.consoleText();
      expect(console).toMatch(/bootlace(\[\d+\])?: bootlace: stop exited 0/);
      expect(await unwiredProblems(console)).toEqual([]);
    });
  });

  describe("deliberate breaks fail the checks with messages that say what broke", () => {
    it("IMDS refusing (403, as with HttpEndpoint=disabled): bootlace exits 3 and its unit fails", async () => {
      seeded.imds.setDisabled(true);
      try {
        const boot = await bootGuest("break: IMDS off", "systemd", {});
        await boot.vm.powerOff("force", 3 * MINUTE);
        const problems = said(boot, unitProblems(boot));
        expect(problems).toContainEqual(expect.stringMatching(/^bootlace\.service failed \(exit-code, exit 3\)/));
        expect(problems.join("\n")).toMatch(/403/);
      } finally {
        seeded.imds.setDisabled(false);
      }
    });

    it("the private AWS endpoint leading nowhere: the run exits 1 and the world is not wired", async () => {
      const closed = await freePort();
      const boot = await bootGuest("break: endpoint", "systemd", { awsPort: closed });
      await boot.vm.powerOff("force", 3 * MINUTE);
      const problems = said(boot, [...unitProblems(boot), ...(await wiringProblems(boot))]);
      expect(problems).toContainEqual(expect.stringMatching(/^bootlace's run exited 1: failed actions /));
      expect(problems).toContainEqual(expect.stringMatching(/is not registered in the target group web/));
      expect(problems).toContainEqual(expect.stringMatching(/^www\.boot\.internal\. holds nothing/));
    });

    it("a file outside the sandbox's writable folders: the run exits 1 with the read-only error, the file is as it was", async () => {
      const imds = await world.startImds({
        ...seeded.instance,
        userData: `${USER_DATA}    - path: ${OUTSIDE}\n      block: "{{#peers.db}}db {{ip}}\\n{{/peers.db}}"\n`,
      });
      const boot = await bootGuest("break: outside the sandbox", "systemd", { imds });
      await boot.vm.powerOff("force", 3 * MINUTE);
      const problems = said(boot, unitProblems(boot));
      expect(problems).toContainEqual(
        expect.stringMatching(
          /^bootlace's run exited 1: failed actions .*files: failed — .*read-only filesystem.*ReadWritePaths=/i,
        ),
      );
      expect(problems.join("\n")).toContain("outside.conf");
      expect(boot.file(OUTSIDE)).toBe(readFileSync(join(REPO_ROOT, "test/boot/guest", OUTSIDE), "utf8"));
    });
  });
});

async function seed(w: World): Promise<Seeded> {
  const { vpcId } = await w.createVpc("10.60.0.0/16");
  const env = { Env: "boot" };
  const instance = await w.launchInstance({ vpcId, tags: { Name: "web-1", Role: "web", ...env } });
  const db = await w.launchInstance({ vpcId, tags: { Name: "db-1", Role: "db", ...env } });
  const apps = [
    await w.launchInstance({ vpcId, tags: { Name: "app-1", Role: "app", ...env } }),
    await w.launchInstance({ vpcId, tags: { Name: "app-2", Role: "app", ...env } }),
  ];
  return {
    instance,
    db,
    apps,
    eip: await w.allocateAddress({ Pool: "boot" }),
    targetGroup: await w.createTargetGroup({ name: "web", vpcId, port: 80 }),
    zoneId: await w.createHostedZone("boot.internal", { privateVpcId: vpcId }),
    imds: await w.startImds({ ...instance, userData: USER_DATA }),
  };
}

/** Boots the guest until its reporter has written its report; the VM is left running for the test to power off. */
async function bootGuest(
  name: string,
  variant: Variant,
  o: { overlay?: string; awsPort?: number; imds?: ImdsEmulator },
): Promise<Boot> {
  const dir = join(RUN_DIR, name.replace(/[^a-z0-9.]+/gi, "-"));
  mkdirSync(dir, { recursive: true });
  const vm = await startVm({
    images,
    variant,
    ...(o.overlay !== undefined && { overlay: o.overlay }),
    share: join(dir, "share"),
    imdsPort: Number(new URL((o.imds ?? seeded.imds).endpoint).port),
    awsPort: o.awsPort ?? Number(new URL(world.proxy.endpoint).port),
    console: join(dir, "console.log"),
    limitMs: 15 * MINUTE,
  });
  vms.push(vm);
  // A guest that never reports is stopped at once: the next boot may want its disk.
  const reportMs = await vm.ready(8 * MINUTE).catch(async (e: unknown) => {
    await vm.kill();
    throw e;
  });
  const out = join(dir, "share", "out");
  const read = (file: string): string => (existsSync(join(out, file)) ? readFileSync(join(out, file), "utf8") : "");
  const boot: Boot = {
    name,
    vm,
    dir,
    units: parseShow(read("units.txt")),
    journal: read("journal.txt"),
    reportMs,
    file: (path) => read(join("files", path)),
  };
  const summary = summaryOf(boot.journal);
  const wiredS = consoleTimeOf(vm.consoleText());
  figures.push({
    boot: name,
    reportS: reportMs / 1000,
    ...(wiredS !== undefined && { wiredS }),
    ...(summary && { runS: summary.seconds }),
  });
  return boot;
}

/** Keeps what the checks said about a broken boot, to print with the figures: the messages a failure would show. */
function said(boot: Boot, problems: string[]): string[] {
  brokenSaid.push(`${boot.name}:\n${problems.map((p) => `    - ${p.split("\n")[0] ?? ""}`).join("\n")}`);
  return problems;
}

function figureOf(boot: Boot): Figure {
  const f = figures.find((x) => x.boot === boot.name);
  if (!f) throw new Error(`no figures for ${boot.name}`);
  return f;
}

/** `systemctl show A B C -p ...`: blocks separated by blank lines, keyed by Id. */
function parseShow(text: string): Record<string, Record<string, string>> {
  const units: Record<string, Record<string, string>> = {};
  for (const block of text.split(/\n\s*\n/)) {
    const fields = Object.fromEntries(
      block
        .split("\n")
        .filter((l) => l.includes("="))
        .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
    );
    if (fields.Id) units[fields.Id] = fields;
  }
  return units;
}

/** bootlace's closing summary line in a journal or console: "bootlace run on i-…: made N changes … in S s". */
function summaryOf(text: string): { changes: number; seconds: number } | undefined {
  const m = /bootlace run on i-[0-9a-f]+: made (\d+) changes?(?:, \d+ actions? failed)? in ([\d.]+) s/.exec(text);
  return m ? { changes: Number(m[1]), seconds: Number(m[2]) } : undefined;
}

/** Seconds from kernel start to bootlace's summary, from the console's monotonic timestamps. */
function consoleTimeOf(console: string): number | undefined {
  const m = /^\[\s*([\d.]+)\] bootlace(?:\[\d+\])?: bootlace run on i-/m.exec(console);
  return m ? Number(m[1]) : undefined;
}

/** What bootlace said during the boot (its journal lines, without timestamp, host and pid). */
function bootlaceSaid(journal: string): string[] {
  return journal
    .split("\n")
    .map((l) => / bootlace\[\d+\]: (.*)$/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined);
}

/** bootlace.service at boot: active after a successful run, whichever unit it is (native or made from init.d). */
function unitProblems(boot: Boot): string[] {
  const unit = boot.units["bootlace.service"];
  if (!unit) return [`the guest reported no bootlace.service (units.txt: ${JSON.stringify(boot.units)})`];
  const lines = bootlaceSaid(boot.journal);
  const said = `\nbootlace said:\n${lines.slice(-15).join("\n") || "(nothing)"}`;
  const last = lines.at(-1) ?? "(nothing from bootlace in the journal)";
  const problems: string[] = [];
  if (unit.LoadState !== "loaded") problems.push(`bootlace.service is ${unit.LoadState}, not loaded`);
  else if (unit.ActiveState === "inactive" && unit.InactiveExitTimestampMonotonic === "0")
    problems.push(`bootlace.service never started at boot: not enabled? (${unit.UnitFileState})${said}`);
  else if (unit.ActiveState !== "active" || unit.Result !== "success")
    problems.push(`bootlace.service failed (${unit.Result}, exit ${unit.ExecMainStatus}): ${last}${said}`);
  // The native unit keeps exit 1 (an action failed) "active" so that stop still undoes the rest: its summary's
  // "<action>: failed — <error>" lines say which.
  else if (unit.ExecMainStatus !== "0") {
    const failed = lines.map((l) => /^\s+(\w+: failed — .*)$/.exec(l)?.[1]).filter(Boolean);
    problems.push(`bootlace's run exited ${unit.ExecMainStatus}: failed actions ${failed.join("; ") || "?"}${said}`);
  }
  if (summaryOf(boot.journal) === undefined) problems.push(`the journal has no summary from bootlace${said}`);
  return problems;
}

/** The world and the guest's files as bootlace's user-data wants them, each difference said in words. */
async function wiringProblems(boot: Boot): Promise<string[]> {
  const { instance, db, apps, eip } = seeded;
  const problems: string[] = [];
  const [address] =
    (await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [eip.allocationId] }))).Addresses ?? [];
  // Associated through the instance's primary interface: moto then names the interface, not always the instance.
  const holder = address?.InstanceId || address?.NetworkInterfaceId || "nobody";
  if (holder !== instance.instanceId && holder !== instance.interfaceId)
    problems.push(`the Elastic IP ${eip.publicIp} is not on ${instance.instanceId} (held by ${holder})`);
  const targets = await targetsOf();
  if (!targets.includes(`${instance.instanceId}:healthy`))
    problems.push(
      `${instance.instanceId} is not registered in the target group web (targets: ${targets.join(", ") || "none"})`,
    );
  for (const [name, want] of [
    ["www.boot.internal.", eip.publicIp],
    [`${instance.instanceId}.boot.internal.`, instance.privateIpv4],
  ] as const) {
    const values = await recordOf(name);
    if (values?.join() !== want) problems.push(`${name} holds ${values?.join(" ") ?? "nothing"}, not ${want}`);
  }
  const files: [string, string][] = [
    ["/etc/hosts", `${db.privateIpv4} db.boot.internal db-1`],
    ["/srv/app/config.php", `define('DB_HOST', '${db.privateIpv4}')`],
    [
      "/etc/postgresql/15/main/pg_hba.conf",
      apps.map((a) => `host all all ${a.privateIpv4}/32 scram-sha-256`).join("\n"),
    ],
    // Written through the guest's ReadWritePaths= drop-in.
    ["/usr/local/etc/app/peers.conf", `db ${db.privateIpv4}`],
  ];
  for (const [path, want] of files) {
    const text = boot.file(path);
    if (!text.includes(want)) problems.push(`${path} in the guest lacks "${want}":\n${text}`);
  }
  return problems;
}

/** After a graceful power-off: bootlace's stop ran and undid what must not outlive the instance. */
async function unwiredProblems(console: string): Promise<string[]> {
  const problems: string[] = [];
  if (!/bootlace(?:\[\d+\])?: bootlace stop on i-[0-9a-f]+: made \d+ changes?/.test(console))
    problems.push("the console shows no summary of bootlace stop: ExecStop did not run");
  const registered = (await targetsOf()).filter((t) => !/:(draining|unused)$/.test(t));
  if (registered.length > 0) problems.push(`still registered in the target group web: ${registered.join(", ")}`);
  const www = await recordOf("www.boot.internal.");
  if (www !== undefined) problems.push(`www.boot.internal. (delete_on_shutdown) still holds ${www.join(" ")}`);
  return problems;
}

async function targetsOf(): Promise<string[]> {
  const health = await world.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: seeded.targetGroup }));
  return (health.TargetHealthDescriptions ?? []).map((t) => `${t.Target?.Id ?? "?"}:${t.TargetHealth?.State ?? "?"}`);
}

async function recordOf(name: string): Promise<string[] | undefined> {
  return (await world.listRecords(seeded.zoneId)).find((r) => r.name === name && r.type === "A")?.values;
}

function printFigures(): void {
  const s = (n: number | undefined): string => (n === undefined ? "-" : n.toFixed(1));
  const rows = figures.map(
    (f) =>
      `  ${f.boot.padEnd(18)} ${s(f.reportS).padStart(8)} ${s(f.exitS).padStart(8)} ${s(f.wiredS).padStart(10)} ${s(f.runS).padStart(8)}`,
  );
  process.stdout.write(
    [
      "",
      `boot test figures (${accelerator() === "kvm" ? "KVM" : "TCG: software emulation"}; 2 vCPUs; timings, not assertions)`,
      `  ${imageFigure}`,
      `  ${"boot".padEnd(18)} ${"report s".padStart(8)} ${"off s".padStart(8)} ${"wired s".padStart(10)} ${"run s".padStart(8)}`,
      ...rows,
      "  report: QEMU start → the guest's report (boot over); off: QEMU start → QEMU exit;",
      "  wired: kernel start → bootlace's summary (console timestamp); run: bootlace's own duration.",
      ...(brokenSaid.length > 0 ? ["  what the checks said about the deliberately broken boots (first lines):"] : []),
      ...brokenSaid.map((b) => `  ${b}`),
      `  consoles and shares: ${RUN_DIR}`,
      "",
    ].join("\n"),
  );
}
