// Prints start-up and run figures for the real bundle, as medians over repeated runs in one invocation: bare Node,
// --help, validate, a Route 53 run (plan + upsert + INSYNC, then a no-change run), an Elastic IP + target group +
// record run, files runs (with peers: EC2 only; without: no AWS SDK), and the full wiring by bootlace against the
// same work by a shell script with curl, the AWS CLI and sed (scripts/bench/full-wiring.ts), in one local moto world.
// Every bootlace process shares one code cache directory (made by the first run of each command; "no code cache"
// rows run without one). BENCH_NODE runs bootlace and `node -e 0` on another Node (e.g. scripts/fetch-node.sh 18.20.4).
import { execFileSync, spawn } from "node:child_process";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { makeRoot } from "../test/harness/run-bundle";
import { startWorld } from "../test/harness/world";
import { compareFullWiring } from "./bench/full-wiring";

const bundle = resolve(__dirname, "bootlace.js");
const probe = resolve(__dirname, "..", "scripts", "rss-probe.cjs");
const repeats = Number(process.env.BENCH_REPEATS ?? 10);
const node = process.env.BENCH_NODE || process.execPath;
/** Made by main(): the code cache every bootlace process of the bench shares. */
let cacheDir = "";

interface Sample {
  ms: number;
  rssKiB: number;
  code: number | null;
}

async function measure(args: string[], env: Record<string, string>): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), "bootlace-bench-"));
  const rssFile = join(dir, "rss");
  const started = process.hrtime.bigint();
  const code = await new Promise<number | null>((done, fail) => {
    const child = spawn(node, ["--require", probe, ...args], {
      stdio: ["ignore", "ignore", "ignore"],
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: dir,
        BOOTLACE_RSS_FILE: rssFile,
        BOOTLACE_CACHE_DIR: cacheDir,
        ...env,
      },
    });
    child.on("error", fail);
    child.on("exit", done);
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const rssKiB = Number(await readFile(rssFile, "utf8").catch(() => "0"));
  return { ms, rssKiB, code };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function row(label: string, samples: Sample[]): string {
  const ms = samples.map((s) => s.ms);
  const bad = samples.filter((s) => s.code !== 0).length;
  return (
    `${label.padEnd(44)} ${median(ms).toFixed(0).padStart(6)} ms  (min ${Math.min(...ms).toFixed(0)}, max ${Math.max(...ms).toFixed(0)})` +
    `  peak RSS ${(median(samples.map((s) => s.rssKiB)) / 1024).toFixed(1).padStart(6)} MiB${bad ? `  [${bad} non-zero exits]` : ""}`
  );
}

async function main(): Promise<void> {
  const size = (await stat(bundle)).size;
  const version = execFileSync(node, ["--version"], { encoding: "utf8" }).trim();
  console.log(`bundle: dist/bootlace.js ${(size / 1024).toFixed(0)} KiB; node ${version}; ${repeats} runs each\n`);
  cacheDir = await mkdtemp(join(tmpdir(), "bootlace-bench-cache-"));
  const noCache = { BOOTLACE_CACHE_DIR: "" };

  const dir = await mkdtemp(join(tmpdir(), "bootlace-bench-cfg-"));
  const config = join(dir, "bootlace.yaml");
  await writeFile(
    config,
    "dns:\n  records:\n    - { zone: bench.internal, private: true, name: 'web-{{instance.id}}.bench.internal', ttl: 60 }\n",
  );

  // Alternating, so that a slow moment of a shared machine falls on every row alike.
  const cli: [string, string[], Record<string, string>][] = [
    ["node -e 0", ["-e", "0"], {}],
    ["bootlace --help", [bundle, "--help"], {}],
    ["bootlace --help, no code cache", [bundle, "--help"], noCache],
    ["bootlace validate FILE", [bundle, "validate", config], {}],
    ["bootlace validate FILE, no code cache", [bundle, "validate", config], noCache],
  ];
  const samples = cli.map((): Sample[] => []);
  for (let i = 0; i < repeats + 1; i++) {
    for (const [n, [, args, env]] of cli.entries()) {
      const sample = await measure(args, env);
      // The first round makes the cache: its figures are the "no code cache" rows' business.
      if (i > 0) samples[n]!.push(sample);
    }
  }
  const floor = median(samples[0]!.map((s) => s.ms));
  for (const [n, [label]] of cli.entries()) {
    const ratio = n === 0 ? "" : `  ${(median(samples[n]!.map((s) => s.ms)) / floor).toFixed(1)}x node -e 0`;
    console.log(row(label, samples[n]!) + ratio);
  }
  console.log("");

  const world = await startWorld({ route53PendingMs: 0 });
  try {
    const { vpcId } = await world.createVpc("10.0.0.0/16");
    await world.createHostedZone("bench.internal", { privateVpcId: vpcId });
    await world.createTargetGroup({ name: "bench", vpcId });

    /** Runs a fresh instance twice (first run, then nothing to change), `repeats` times; prints times and calls. */
    const twice = async (label: string, userData: string, prepare = (): Promise<void> => Promise.resolve()) => {
      const fresh: Sample[] = [];
      const again: Sample[] = [];
      let calls = { first: 0, mutatingFirst: 0, second: 0, mutatingSecond: 0 };
      for (let i = 0; i < repeats; i++) {
        await prepare();
        const instance = await world.launchInstance({ vpcId });
        const imds = await world.startImds({ ...instance, userData });
        const root = await makeRoot();
        const env = { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint, AWS_ENDPOINT_URL: world.proxy.endpoint };
        world.proxy.resetCalls();
        fresh.push(await measure([bundle, "run", "--root", root], env));
        const first = { first: world.proxy.calls.length, mutatingFirst: world.proxy.mutatingCalls().length };
        world.proxy.resetCalls();
        again.push(await measure([bundle, "run", "--root", root], env));
        calls = { ...first, second: world.proxy.calls.length, mutatingSecond: world.proxy.mutatingCalls().length };
        await imds.close();
      }
      console.log(row(`bootlace run: ${label}`, fresh));
      console.log(row("bootlace run again: nothing to change", again));
      console.log(
        `  AWS API calls per run: first ${calls.first} (changing ${calls.mutatingFirst}), ` +
          `second ${calls.second} (changing ${calls.mutatingSecond})\n`,
      );
    };

    await twice("1 record, upsert + INSYNC", `#bootlace\n${await readFile(config, "utf8")}`);
    const wired = [
      "#bootlace",
      "elastic_ip: { pool: { tags: { Pool: bench } } }",
      "load_balancer: { target_groups: [{ name: bench }], wait_healthy: 60 }",
      "dns:",
      "  records: [{ zone: bench.internal, private: true, name: 'eip-{{instance.id}}.bench.internal', value: elastic_ip }]",
    ].join("\n");
    await twice("EIP (pool) + target group + 1 record", wired, async () => {
      await world.allocateAddress({ Pool: "bench" });
    });
    // Files: three blocks from two peer sets (EC2 DescribeInstances only), then three blocks with no peers (no SDK).
    await world.launchInstance({ vpcId, tags: { Role: "db" } });
    for (const _ of [1, 2]) await world.launchInstance({ vpcId, tags: { Role: "app" } });
    const blocks = (hosts: string, list: string) =>
      [
        `  - { path: /etc/hosts, block: "${hosts}" }`,
        `  - { path: /etc/peers.list, block: "${list}", check: "test -s {{staged}}", on_change: "true" }`,
        `  - { path: /etc/motd, block: "{{instance.id}} {{instance.private_ipv4}}\\n", on_change: "true" }`,
      ].join("\n");
    const peers = "peers: { db: { tags: { Role: db } }, app: { tags: { Role: app } } }";
    await twice(
      "peers (2 sets) + 3 files: EC2 only",
      `#bootlace\n${peers}\nfiles:\n${blocks("{{#peers.db}}{{ip}} db\\n{{/peers.db}}", "{{#peers.app}}{{ip}}\\n{{/peers.app}}")}`,
    );
    await twice(
      "3 files, no peers: no AWS SDK",
      `#bootlace\nfiles:\n${blocks("{{instance.private_ipv4}} {{instance.id}}.bench.internal\\n", "x\\n")}`,
    );
    await compareFullWiring({ world, vpcId, repeats, bundle, measure, row, median });
    console.log("(Route 53 changes are INSYNC and targets healthy at once here; on AWS those waits add seconds.)");
  } finally {
    await world.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
