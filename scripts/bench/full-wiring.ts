// The full wiring (Elastic IP from a pool + target group + a record to the Elastic IP + two peer sets + three files),
// by bootlace and by the shell way (scripts/bench/shell-wiring.sh: curl, the AWS CLI, sed), each on fresh instances
// of one moto world, alternating; medians, their ratio, and what each side asked of AWS. Every run is checked
// afterwards, so a side that did less cannot look faster.
import { execFileSync, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DescribeAddressesCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import type { ImdsInstance } from "../../test/harness/imds-emulator";
import { makeRoot } from "../../test/harness/run-bundle";
import type { World } from "../../test/harness/world";

export interface Sample {
  ms: number;
  rssKiB: number;
  code: number | null;
}

export interface BenchTools {
  world: World;
  vpcId: string;
  repeats: number;
  bundle: string;
  /** Runs node with the RSS probe: bench.ts's measure(). */
  measure(args: string[], env: Record<string, string>): Promise<Sample>;
  row(label: string, samples: Sample[]): string;
  median(xs: number[]): number;
}

const names = { pool: "wiring", targetGroup: "wiring", zone: "wiring.internal", db: "wiring-db", app: "wiring-app" };

// The same work as the shell script: no check or on_change commands, which the script has no counterpart for.
const userDataWith = (waits: boolean) => `#bootlace
elastic_ip: { pool: { tags: { Pool: ${names.pool} } } }
load_balancer: { target_groups: [{ name: ${names.targetGroup} }], wait_healthy: ${waits ? 60 : 0} }
dns:
  wait: ${waits ? "insync" : "none"}
  records: [{ zone: ${names.zone}, private: true, name: "eip-{{instance.id}}.${names.zone}", value: elastic_ip }]
peers: { db: { tags: { Role: ${names.db} } }, app: { tags: { Role: ${names.app} } } }
files:
  - { path: /etc/hosts, block: "{{#peers.db}}{{ip}} db\\n{{/peers.db}}" }
  - { path: /etc/peers.list, block: "{{#peers.app}}{{ip}}\\n{{/peers.app}}" }
  - { path: /etc/motd, block: "{{instance.id}} {{instance.private_ipv4}}\\n" }
`;

const script = resolve(__dirname, "..", "scripts", "bench", "shell-wiring.sh");

/** The AWS CLI itself, not a version manager's shim in front of it (pyenv's adds ~100 ms to every call). */
function awsCli(): string | undefined {
  for (const [cmd, args] of [
    ["pyenv", ["which", "aws"]],
    ["sh", ["-c", "command -v aws"]],
  ] as const) {
    try {
      const path = execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
      if (path) return path;
    } catch {
      // not this way
    }
  }
  return undefined;
}

/** Runs a command under GNU time for its peak RSS (the largest process of the tree). */
async function measureCommand(file: string, args: string[], env: Record<string, string>): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), "bootlace-bench-sh-"));
  const rssFile = join(dir, "rss");
  const haveTime = existsSync("/usr/bin/time");
  const started = process.hrtime.bigint();
  const code = await new Promise<number | null>((done, fail) => {
    const [cmd, argv] = haveTime ? ["/usr/bin/time", ["-f", "%M", "-o", rssFile, file, ...args]] : [file, args];
    const child = spawn(cmd, argv, {
      stdio: ["ignore", "ignore", "ignore"],
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, ...env },
    });
    child.on("error", fail);
    child.on("exit", done);
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const rssKiB = haveTime ? Number(readFileSync(rssFile, "utf8").trim().split("\n").pop()) : 0;
  return { ms, rssKiB, code };
}

/** Whether a run did the whole wiring: the address, the registration, the record, and the three files. */
interface Wiring {
  world: World;
  targetGroupArn: string;
  zoneId: string;
  peers: { db: string[]; app: string[] };
}

async function wired(w: Wiring, instance: ImdsInstance, root: string): Promise<string[]> {
  const { world, targetGroupArn, zoneId, peers } = w;
  const problems: string[] = [];
  // bootlace associates with the primary interface's private address, so the instance is found by that address.
  const addresses = await world.ec2.send(
    new DescribeAddressesCommand({ Filters: [{ Name: "tag:Pool", Values: [names.pool] }] }),
  );
  const eip = addresses.Addresses?.find(
    (a) => a.AssociationId && (a.InstanceId === instance.instanceId || a.PrivateIpAddress === instance.privateIpv4),
  )?.PublicIp;
  if (!eip) problems.push("no Elastic IP");
  const health = await world.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: targetGroupArn }));
  if (!health.TargetHealthDescriptions?.some((d) => d.Target?.Id === instance.instanceId))
    problems.push("not registered");
  const record = (await world.listRecords(zoneId)).find((r) => r.name === `eip-${instance.instanceId}.${names.zone}.`);
  if (!eip || record?.values[0] !== eip) problems.push(`record ${record?.values.join(",") ?? "missing"}, EIP ${eip}`);
  const file = (path: string) => (existsSync(join(root, path)) ? readFileSync(join(root, path), "utf8") : "");
  if (!peers.db.every((ip) => file("/etc/hosts").includes(`${ip} db`))) problems.push("/etc/hosts");
  if (!peers.app.every((ip) => file("/etc/peers.list").includes(ip))) problems.push("/etc/peers.list");
  if (!file("/etc/motd").includes(`${instance.instanceId} ${instance.privateIpv4}`)) problems.push("/etc/motd");
  return problems;
}

/** The full wiring by each side, first waiting for healthy and INSYNC as users do, then with no waits. */
export async function compareFullWiring(t: BenchTools): Promise<void> {
  const { world, vpcId } = t;
  const aws = awsCli();
  if (!aws) {
    console.log("  *** the AWS CLI (aws) is not installed: the shell + CLI side cannot run; bootlace side only ***");
  }
  const db = [await world.launchInstance({ vpcId, tags: { Role: names.db } })];
  const app = await Promise.all([1, 2].map(() => world.launchInstance({ vpcId, tags: { Role: names.app } })));
  const w: Wiring = {
    world,
    targetGroupArn: await world.createTargetGroup({ name: names.targetGroup, vpcId }),
    zoneId: await world.createHostedZone(names.zone, { privateVpcId: vpcId }),
    peers: { db: db.map((i) => i.privateIpv4), app: app.map((i) => i.privateIpv4) },
  };
  for (const waits of [true, false]) await compareSides(t, w, aws, waits);
}

/**
 * With `waits`, both sides wait for the target to be healthy and the change to be INSYNC; without, neither does
 * (wait_healthy: 0 and dns.wait: none; the script's NO_WAIT=1), which leaves each side's own work: bootlace's first
 * look at a change or a target comes about a second after it (issue 11's sparse polling), the AWS CLI's at once, and
 * against moto, where both are done at once, that second is most of bootlace's run.
 */
async function compareSides(t: BenchTools, w: Wiring, aws: string | undefined, waits: boolean): Promise<void> {
  const { world, vpcId } = t;
  const userData = userDataWith(waits);
  console.log(
    "\nfull wiring: Elastic IP (pool) + target group + 1 record + 2 peer sets + 3 files, fresh instance each run, " +
      (waits ? "waiting for healthy and INSYNC" : "no waits"),
  );
  const sea = resolve(t.bundle, "..", "bootlace-linux-x64");
  interface Side {
    label: string;
    run(env: { imds: string; aws: string; root: string }): Promise<Sample>;
    samples: Sample[];
    calls: number;
    unwired: string[];
  }
  const side = (label: string, run: Side["run"]): Side => ({ label, run, samples: [], calls: 0, unwired: [] });
  const bootlaceEnv = (e: { imds: string; aws: string }) => ({
    AWS_EC2_METADATA_SERVICE_ENDPOINT: e.imds,
    AWS_ENDPOINT_URL: e.aws,
  });
  const sides: Side[] = [
    side("bootlace run", (e) => t.measure([t.bundle, "run", "--root", e.root], bootlaceEnv(e))),
    side("bootlace run, no code cache", (e) =>
      t.measure([t.bundle, "run", "--root", e.root], { ...bootlaceEnv(e), BOOTLACE_CACHE_DIR: "" }),
    ),
    ...(existsSync(sea)
      ? [side("bootlace run, single executable", (e) => measureCommand(sea, ["run", "--root", e.root], bootlaceEnv(e)))]
      : []),
    ...(aws
      ? [
          side("shell: curl + AWS CLI + sed", (e) =>
            measureCommand("bash", [script], {
              IMDS: e.imds,
              AWS_ENDPOINT: e.aws,
              ROOT: e.root,
              AWS: aws,
              POOL: names.pool,
              TARGET_GROUP: names.targetGroup,
              ZONE: names.zone,
              DB_ROLE: names.db,
              APP_ROLE: names.app,
              ...(!waits && { NO_WAIT: "1" }),
            }),
          ),
        ]
      : []),
  ];
  if (!existsSync(sea)) console.log("  (no dist/bootlace-linux-x64: npm run sea adds the single executable)");

  // Alternating, so a slow moment of the machine falls on every side alike.
  for (let i = 0; i < t.repeats; i++) {
    for (const s of sides) {
      await world.allocateAddress({ Pool: names.pool });
      const instance = await world.launchInstance({ vpcId });
      const imds = await world.startImds({ ...instance, userData });
      const root = await makeRoot();
      world.proxy.resetCalls();
      s.samples.push(await s.run({ imds: imds.endpoint, aws: world.proxy.endpoint, root }));
      s.calls = world.proxy.calls.length;
      const problems = await wired(w, instance, root);
      if (problems.length > 0) s.unwired.push(`run ${i + 1}: ${problems.join("; ")}`);
      await imds.close();
    }
  }

  const ms = (samples: Sample[]) => t.median(samples.map((x) => x.ms));
  for (const s of sides) console.log(t.row(s.label, s.samples));
  const shell = sides.find((s) => s.label.startsWith("shell"));
  if (shell) {
    const cli: Sample[] = [];
    for (let i = 0; i < t.repeats; i++) cli.push(await measureCommand(aws ?? "aws", ["--version"], {}));
    console.log(t.row("  one AWS CLI start (aws --version)", cli));
    for (const s of sides.filter((x) => x !== shell)) {
      console.log(
        `  ratio (medians): ${s.label} is ${(ms(shell.samples) / ms(s.samples)).toFixed(1)}x faster than the shell way`,
      );
    }
  }
  console.log(`  AWS API calls per run: ${sides.map((s) => `${s.label} ${s.calls}`).join(", ")}`);
  for (const s of sides)
    for (const line of s.unwired) console.log(`  *** ${s.label} did not wire everything: ${line} ***`);
}
