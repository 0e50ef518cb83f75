// The demo: a simulated instance in a local moto world, wired by the real bundle (dist/bootlace.js) — plan, run,
// run again (nothing changes), stop — showing what bootlace did and what the world looks like after each step; then
// an Auto Scaling instance prepared in a warm pool, wired at InService, and drained by watch at a spot notice.
import { DescribeAddressesCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand, ElasticLoadBalancingV2Client } from "@aws-sdk/client-elastic-load-balancing-v2";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import type { ImdsEmulator } from "../test/harness/imds-emulator";
import { makeRoot } from "../test/harness/run-bundle";
import type { World } from "../test/harness/world";
import { startWorld, TEST_CREDENTIALS } from "../test/harness/world";
import type { HookSpec } from "../test/harness/world-autoscaling";
import { autoScalingWorld } from "../test/harness/world-autoscaling";

const bundle = resolve(__dirname, "bootlace.js");
const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string): string => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);

function heading(text: string): void {
  console.log(`\n${bold(`== ${text} ==`)}`);
}

/** Runs the bundle as a user would, with only the endpoint variables a private-endpoint user sets; output streams. */
function bootlace(
  args: string[],
  imds: ImdsEmulator,
  world: World,
  root: string,
  home: string,
  quiet = false,
): Promise<number> {
  if (!quiet) console.log(dim(`$ bootlace ${args.join(" ")}`));
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [bundle, ...args, "--root", root], {
      stdio: ["ignore", quiet ? "ignore" : "inherit", quiet ? "ignore" : "inherit"],
      env: bundleEnv(imds, world, home),
    });
    child.on("error", fail);
    child.on("exit", (code) => done(code ?? 1));
  });
}

async function showRecords(world: World, zoneId: string, reverseZoneId?: string): Promise<void> {
  const reverse = reverseZoneId === undefined ? [] : await world.listRecords(reverseZoneId);
  const records = [...(await world.listRecords(zoneId)), ...reverse];
  const shown = records.filter((r) => r.type === "A" || r.type === "TXT" || r.type === "PTR");
  if (shown.length === 0) console.log("  (no A, TXT or PTR records)");
  for (const r of shown) {
    const set = r.setIdentifier !== undefined ? `  [set ${r.setIdentifier}${r.multivalue ? ", multivalue" : ""}]` : "";
    console.log(`  ${r.name.padEnd(52)} ${r.type.padEnd(4)} ${String(r.ttl).padStart(4)}  ${r.values.join(" ")}${set}`);
  }
}

/** Who holds the Pool=demo address, and the target group's targets (as moto holds them). */
async function showAddressAndTargets(world: World, allocationId: string, tg: string): Promise<void> {
  const [address] =
    (await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }))).Addresses ?? [];
  const holder = address?.NetworkInterfaceId
    ? `${address.NetworkInterfaceId} ${address.PrivateIpAddress ?? ""}`
    : "nobody";
  console.log(`  Elastic IP ${address?.PublicIp ?? "?"} (${allocationId}) is associated with: ${holder}`);
  const targets = (await world.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg })))
    .TargetHealthDescriptions;
  const listed = (targets ?? []).map((t) => `${t.Target?.Id ?? "?"}:${t.Target?.Port ?? "?"}`).join(", ");
  console.log(`  target group web: ${listed || "no targets"}`);
}

const userData = `#cloud-config
# cloud-init writes bootlace's file (write_files); bootlace reads it from there, or from here while it is not there yet.
packages: [nginx]
write_files:
  - path: /etc/bootlace/conf.d/60-user-data.yaml
    content: |
      elastic_ip:
        pool: { tags: { Pool: demo } }
      load_balancer:
        target_groups: [{ name: web }]
        wait_healthy: 60
      dns:
        records:
          - zone: demo.internal
            private: true
            name: "www.demo.internal"
            value: elastic_ip
            delete_on_shutdown: true
          - zone: demo.internal
            private: true
            name: "{{instance.id}}.demo.internal"
            delete_on_shutdown: true
            reverse: true                       # and its PTR, in the VPC's reverse zone
          - zone: demo.internal
            private: true
            name: api.demo.internal             # a name the fleet shares: one record set per instance
            set_identifier: "{{instance.id}}"
            multivalue: true
            delete_on_shutdown: true
          - zone: demo.internal
            private: true
            name: "web-{{tags.Env}}.demo.internal"
            ttl: 30
      peers:
        db: { tags: { Role: db, Env: "{{tags.Env}}" }, min: 1, timeout: 60 }
        app: { tags: { Role: app, Env: "{{tags.Env}}" } }
      files:
        - path: /etc/hosts
          block: |
            {{#peers.db}}{{ip}} db.demo.internal {{name}}
            {{/peers.db}}
        - path: /var/www/app/Config.php
          replace:
            - match: "define\\\\(\\\\s*'DB_HOST',\\\\s*'[^']*'\\\\s*\\\\)"
              with: "define( 'DB_HOST', '{{peers.db.0.ip}}' )"
          on_change: echo "php-fpm reloaded" >> reloads.log
        - path: /etc/postgresql/15/main/pg_hba.conf
          block: |
            {{#peers.app}}host all all {{ip}}/32 scram-sha-256
            {{/peers.app}}
          position: top
          check: "test -s {{staged}}"
          on_change: echo "postgresql reloaded" >> reloads.log
`;

/** Another instance of the fleet, already under the shared name. */
const fleetUserData = `#bootlace
dns:
  records:
    - { zone: demo.internal, private: true, name: api.demo.internal, set_identifier: "{{instance.id}}", multivalue: true }
`;

/** The files the demo's user-data manages, as the image has them before bootlace runs. */
const demoFiles: Record<string, string> = {
  "/etc/hosts": "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n",
  "/var/www/app/Config.php": "<?php\ndefine( 'DB_HOST', 'localhost' );\ndefine( 'DB_NAME', 'shop' );\n",
  "/etc/postgresql/15/main/pg_hba.conf":
    "# TYPE  DATABASE  USER  ADDRESS  METHOD\nlocal   all       postgres        peer\nhost    all       all   127.0.0.1/32  scram-sha-256\n",
  // An image whose cloud-init would re-render /etc/hosts at every boot: bootlace says so, and how to avoid it.
  "/etc/cloud/cloud.cfg": "manage_etc_hosts: true\nsystem_info:\n  distro: ubuntu\n",
};

async function seedFiles(root: string): Promise<void> {
  for (const [path, content] of Object.entries(demoFiles)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

async function showFiles(root: string): Promise<void> {
  for (const path of ["/etc/hosts", "/var/www/app/Config.php", "/etc/postgresql/15/main/pg_hba.conf", "/reloads.log"]) {
    const text = await readFile(join(root, path), "utf8").catch(() => "(none)\n");
    console.log(`  ${bold(path)}\n${text.trimEnd().replace(/^/gm, "    ")}`);
  }
}

async function main(): Promise<void> {
  heading("starting a local AWS world (moto) and an IMDS emulator");
  const world = await startWorld({ route53PendingMs: 2000 });
  // As on AWS: a new target is 'initial' for a while before it is healthy, and a deregistered one drains.
  world.proxy.elbv2.setTargetHealth({ initialMs: 4000 });
  world.proxy.elbv2.setDrainMs(2000);
  try {
    const { vpcId } = await world.createVpc("10.0.0.0/16");
    const instance = await world.launchInstance({ vpcId, tags: { Name: "web-1", Role: "web", Env: "demo" } });
    const db = await world.launchInstance({ vpcId, tags: { Name: "db-1", Role: "db", Env: "demo" } });
    const apps = await Promise.all(
      ["app-1", "app-2"].map((name) => world.launchInstance({ vpcId, tags: { Name: name, Role: "app", Env: "demo" } })),
    );
    const eip = await world.allocateAddress({ Pool: "demo" });
    const tg = await world.createTargetGroup({ name: "web", vpcId, port: 80 });
    const zoneId = await world.createHostedZone("demo.internal", { privateVpcId: vpcId });
    const reverseZoneId = await world.createHostedZone("0.10.in-addr.arpa", { privateVpcId: vpcId });
    const imds = await world.startImds({ ...instance, userData });
    const root = await makeRoot();
    const home = await mkdtemp(join(tmpdir(), "bootlace-demo-home-"));

    console.log(`  this instance  ${instance.instanceId}  ${instance.privateIpv4}  (Role=web, Env=demo)`);
    console.log(`  peers          db ${db.privateIpv4}, app ${apps.map((a) => a.privateIpv4).join(", ")}`);
    console.log(`  Elastic IP     ${eip.allocationId} ${eip.publicIp} (Pool=demo)`);
    console.log(`  target group   ${tg}`);
    console.log(`  hosted zones   demo.internal (private, ${zoneId}), 0.10.in-addr.arpa (private, ${reverseZoneId})`);
    console.log(`  root folder    ${root}`);
    console.log(
      `  IMDS           ${imds.endpoint}   AWS ${world.proxy.endpoint}   (Route 53 changes stay PENDING 2 s, targets initial 4 s)`,
    );
    heading("the instance's user-data");
    console.log(userData.trimEnd().replace(/^/gm, "  "));
    await seedFiles(root);
    heading("the files under the root folder before bootlace runs");
    await showFiles(root);

    const fleetImds = await world.startImds({ ...apps[0]!, userData: fleetUserData });
    await bootlace(["run"], fleetImds, world, await makeRoot(), home, true);
    heading(`the zones before: another instance (${apps[0]!.instanceId}) already shares api.demo.internal`);
    await showRecords(world, zoneId, reverseZoneId);

    heading("1. bootlace plan — what would change (nothing is changed)");
    await bootlace(["plan"], imds, world, root, home);

    heading("2. bootlace run — at boot");
    const runCode = await bootlace(["run"], imds, world, root, home);
    console.log(dim(`exit code ${runCode}`));
    heading("the zones now: this instance's own record set under the shared name, and its PTR");
    await showRecords(world, zoneId, reverseZoneId);
    heading("the Elastic IP and the target group now");
    await showAddressAndTargets(world, eip.allocationId, tg);
    heading("the files now (each on_change ran once, after all files were written)");
    await showFiles(root);

    heading("3. bootlace run again — a second run changes nothing");
    world.proxy.resetCalls();
    await bootlace(["run"], imds, world, root, home);
    console.log(`  AWS calls that changed something: ${world.proxy.mutatingCalls().length}`);

    heading("4. bootlace status — what the last run did (from state.json)");
    await bootlace(["status"], imds, world, root, home);

    heading(
      "5. bootlace stop — at shutdown: deregisters (waiting while it drains), deletes records marked delete_on_shutdown",
    );
    await bootlace(["stop"], imds, world, root, home);
    heading("the zones after stop: the other instance's record set under api.demo.internal is left");
    await showRecords(world, zoneId, reverseZoneId);
    heading("the Elastic IP (kept: it outlives the instance) and the target group after stop");
    await showAddressAndTargets(world, eip.allocationId, tg);

    const state = JSON.parse(await readFile(join(root, "var/lib/bootlace/state.json"), "utf8")) as {
      run: { exit_code: number };
    };
    console.log(`  state file: ${join(root, "var/lib/bootlace/state.json")} (last run exit ${state.run.exit_code})`);
    const fleetCode = await autoScalingDemo(world, { vpcId, subnetId: instance.subnetId, tg, zoneId, home });
    heading("done");
    if (runCode !== 0 || fleetCode !== 0) process.exitCode = 1;
  } finally {
    await world.close();
  }
}

/** Who is registered in the target group, as the load balancer reports it (through the proxy: draining included). */
async function showTargets(world: World, tg: string): Promise<void> {
  const elbv2 = new ElasticLoadBalancingV2Client({
    endpoint: world.proxy.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
  });
  try {
    const out = await elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tg }));
    const listed = (out.TargetHealthDescriptions ?? []).map(
      (t) => `${t.Target?.Id ?? "?"} ${t.TargetHealth?.State ?? "?"}`,
    );
    console.log(`  target group web: ${listed.join(", ") || "no targets"}`);
  } finally {
    elbv2.destroy();
  }
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  for (const end = Date.now() + timeoutMs; Date.now() < end; await new Promise((r) => setTimeout(r, 200))) {
    if (await check().catch(() => false)) return true;
  }
  return false;
}

/**
 * The Auto Scaling part: a spot instance launched into a warm pool is prepared (nothing wired) while Warmed:Stopped,
 * wired at InService with its launch hook completed, and drained by `watch` when a spot interruption notice comes.
 */
async function autoScalingDemo(
  world: World,
  w: { vpcId: string; subnetId: string; tg: string; zoneId: string; home: string },
): Promise<number> {
  const asg = autoScalingWorld(world);
  try {
    await asg.createGroup("web-asg", w.subnetId);
    const hook: HookSpec = { group: "web-asg", name: "bootlace-ready", transition: "launch", heartbeatTimeout: 300 };
    await asg.putHook(hook);
    const fleetUserData = `#bootlace
autoscaling: { on_failure: abandon }
load_balancer: { target_groups: [{ name: web }], wait_healthy: 60 }
dns:
  records:
    - { zone: demo.internal, private: true, name: "{{instance.id}}.demo.internal", delete_on_shutdown: true }
peers:
  db: { tags: { Role: db, Env: demo } }
files:
  - path: /etc/app/node.conf
    block: |
      node={{instance.id}} ip={{instance.private_ipv4}}
  - path: /etc/hosts
    block: |
      {{#peers.db}}{{ip}} db.demo.internal
      {{/peers.db}}
watch: { notice_interval: 1 }
`;
    const instance = await world.launchInstance({ vpcId: w.vpcId, tags: { Name: "web-2", Role: "web", Env: "demo" } });
    await asg.attach("web-asg", instance.instanceId);
    const imds = await world.startImds({
      ...instance,
      userData: fleetUserData,
      instanceLifeCycle: "spot",
      lifecycleState: "Warmed:Stopped",
    });
    const root = await makeRoot();
    await seedFiles(root);
    await mkdir(join(root, "etc/app"), { recursive: true });
    heading(`6. Auto Scaling: ${instance.instanceId} launched into web-asg's warm pool (a spot instance)`);
    console.log(fleetUserData.trimEnd().replace(/^/gm, "  "));
    // Auto Scaling holds it in Warmed:Pending:Wait until its launch hook is completed.
    asg.open(hook, instance.instanceId, { warmedTo: "Warmed:Stopped" });
    await bootlace(["run"], imds, world, root, w.home);
    heading("the warm-pool instance is prepared, not wired: no target, no record, no peers in /etc/hosts");
    await showTargets(world, w.tg);
    await showRecords(world, w.zoneId);
    await bootlace(["status"], imds, world, root, w.home);

    heading("7. the group needs it: it boots again, InService (the launch hook holds it in Pending:Wait)");
    imds.update({ lifecycleState: "InService" });
    asg.open(hook, instance.instanceId);
    const code = await bootlace(["run"], imds, world, root, w.home);
    await showTargets(world, w.tg);
    await showRecords(world, w.zoneId);
    for (const r of world.proxy.autoscaling.results) {
      console.log(`  lifecycle hook ${r.hook}: ${r.result} (${r.how}) → ${r.state}`);
    }

    heading("8. bootlace watch, and a spot interruption notice: the one stop path, within the notice's two minutes");
    world.proxy.elbv2.setDrainMs(3000, w.tg);
    const watch = spawnWatch(imds, world, root, w.home);
    await until(() => Promise.resolve(imds.requests.some((r) => r.path.endsWith("spot/instance-action"))), 20_000);
    const noticed = Date.now();
    imds.update({ spotAction: { action: "terminate", time: new Date(noticed + 120_000).toISOString() } });
    console.log(dim(`  (IMDS now serves spot/instance-action: terminate in 120 s)`));
    const statePath = join(root, "var/lib/bootlace/state.json");
    const left = await until(async () => (await readFile(statePath, "utf8")).includes('"left"'), 60_000);
    console.log(
      `  stop path ${left ? "done" : "NOT done"} ${((Date.now() - noticed) / 1000).toFixed(1)} s after the notice`,
    );
    if (watch.exitCode === null) {
      const exited = new Promise((r) => watch.once("exit", r));
      watch.kill("SIGTERM");
      await exited;
    }
    await showTargets(world, w.tg);
    await showRecords(world, w.zoneId);
    heading("9. the shutdown: bootlace stop finds the work done and repeats nothing");
    world.proxy.resetCalls();
    await bootlace(["stop"], imds, world, root, w.home);
    console.log(`  AWS calls that changed something: ${world.proxy.mutatingCalls().length}`);
    return left ? code : 1;
  } finally {
    asg.close();
  }
}

/** What the bundle sees: the emulators' endpoints, and no AWS configuration or credentials of this machine's. */
function bundleEnv(imds: ImdsEmulator, world: World, home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: home,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
    AWS_ENDPOINT_URL: world.proxy.endpoint,
    AWS_CONFIG_FILE: join(home, "none"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "none"),
  };
}

/** `bootlace watch` in the background, its output streamed like the other commands'. */
function spawnWatch(imds: ImdsEmulator, world: World, root: string, home: string): ChildProcess {
  console.log(dim(`$ bootlace watch &`));
  return spawn(process.execPath, [bundle, "watch", "--root", root], {
    stdio: ["ignore", "inherit", "inherit"],
    env: bundleEnv(imds, world, home),
  });
}

main().catch((error: unknown) => {
  console.error(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
