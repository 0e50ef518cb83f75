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
const userData = `#bootlace
elastic_ip: { pool: { tags: { Pool: ${names.pool} } } }
load_balancer: { target_groups: [{ name: ${names.targetGroup} }], wait_healthy: 60 }
dns:
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
      stdio: ["ignore", "ignore", "inherit"],
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

export async function compareFullWiring(t: BenchTools): Promise<void> {
  const { world, vpcId } = t;
  console.log(
    "\nfull wiring: Elastic IP (pool) + target group + 1 record + 2 peer sets + 3 files, fresh instance each run",
  );
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

  const sides = {
    bootlace: { samples: [] as Sample[], calls: 0, unwired: [] as string[] },
    shell: { samples: [] as Sample[], calls: 0, unwired: [] as string[] },
  };
  for (let i = 0; i < t.repeats; i++) {
    for (const side of aws ? (["bootlace", "shell"] as const) : (["bootlace"] as const)) {
      await world.allocateAddress({ Pool: names.pool });
      const instance = await world.launchInstance({ vpcId });
      const imds = await world.startImds({ ...instance, userData });
      const root = await makeRoot();
      world.proxy.resetCalls();
      const sample =
        side === "bootlace"
          ? await t.measure([t.bundle, "run", "--root", root], {
              AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint,
              AWS_ENDPOINT_URL: world.proxy.endpoint,
            })
          : await measureCommand("bash", [script], {
              IMDS: imds.endpoint,
              AWS_ENDPOINT: world.proxy.endpoint,
              ROOT: root,
              AWS: aws ?? "aws",
              POOL: names.pool,
              TARGET_GROUP: names.targetGroup,
              ZONE: names.zone,
              DB_ROLE: names.db,
              APP_ROLE: names.app,
            });
      sides[side].calls = world.proxy.calls.length;
      sides[side].samples.push(sample);
      const problems = await wired(w, instance, root);
      if (problems.length > 0) sides[side].unwired.push(`run ${i + 1}: ${problems.join("; ")}`);
      await imds.close();
    }
  }

  console.log(t.row("bootlace run", sides.bootlace.samples));
  if (aws) {
    console.log(t.row("shell: curl + AWS CLI + sed", sides.shell.samples));
    const cli = [] as Sample[];
    for (let i = 0; i < t.repeats; i++) cli.push(await measureCommand(aws, ["--version"], {}));
    console.log(t.row("  of which one AWS CLI start (aws --version)", cli));
    const ms = (s: Sample[]) => t.median(s.map((x) => x.ms));
    console.log(
      `  ratio (medians): bootlace is ${(ms(sides.shell.samples) / ms(sides.bootlace.samples)).toFixed(1)}x faster` +
        ` than the shell + CLI way`,
    );
  }
  console.log(
    `  AWS API calls per run: bootlace ${sides.bootlace.calls}` + (aws ? `, shell + CLI ${sides.shell.calls}` : ""),
  );
  for (const [side, { unwired }] of Object.entries(sides)) {
    for (const line of unwired) console.log(`  *** ${side} did not wire everything: ${line} ***`);
  }
}
