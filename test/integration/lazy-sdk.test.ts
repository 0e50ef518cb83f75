// Start-up cost: an AWS SDK package is loaded only when the configuration needs its service.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE, BUNDLE_NODE, REPO_ROOT, makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(60_000);

let world: World;
let vpcId: string;

beforeAll(async () => {
  world = await startWorld();
  ({ vpcId } = await world.createVpc("10.40.0.0/16"));
  await world.createHostedZone("lazy.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

const loadedLine = (stderr: string): string | undefined => /aws sdk loaded: (.*)/.exec(stderr)?.[1];

async function bundle(args: string[], userData: string) {
  const instance = await world.launchInstance({ vpcId });
  const imds = await world.startImds({ ...instance, userData });
  const root = await makeRoot();
  return runBootlace([...args, "--log-level", "debug"], { imds: imds.endpoint, aws: world.proxy.endpoint, root });
}

const dnsConfig = "dns:\n  records:\n    - { zone: lazy.internal, name: 'x-{{instance.id}}.lazy.internal' }\n";

it("validate loads no AWS SDK and makes no AWS call", async () => {
  const root = await makeRoot();
  const file = join(root, "bootlace.yaml");
  await writeFile(file, dnsConfig);
  world.proxy.resetCalls();

  const result = await runBootlace(["validate", file, "--log-level", "debug"], {
    imds: "http://127.0.0.1:9",
    aws: world.proxy.endpoint,
    root,
  });

  expect(result.code).toBe(0);
  expect(loadedLine(result.stderr)).toBe("none");
  expect(world.proxy.calls).toEqual([]);
});

it("a run with nothing for AWS to do loads no AWS SDK", async () => {
  const result = await bundle(["run"], "#!/bin/sh\necho no bootlace here\n");

  expect(result.code).toBe(0);
  expect(loadedLine(result.stderr)).toBe("none");
});

it("a run with only Route 53 records loads only the Route 53 client", async () => {
  const result = await bundle(["run"], `#bootlace\n${dnsConfig}`);

  expect(result.code).toBe(0);
  expect(loadedLine(result.stderr)).toBe("@aws-sdk/client-route-53");
});

it("an Auto Scaling instance without an autoscaling section loads no Auto Scaling client; with one, it does", async () => {
  const inGroup = async (userData: string) => {
    const instance = await world.launchInstance({ vpcId });
    const imds = await world.startImds({ ...instance, userData, lifecycleState: "InService" });
    return runBootlace(["run", "--log-level", "debug"], {
      imds: imds.endpoint,
      aws: world.proxy.endpoint,
      root: await makeRoot(),
    });
  };

  const without = await inGroup(`#bootlace\n${dnsConfig}`);
  const withSection = await inGroup(`#bootlace\nautoscaling: {}\n${dnsConfig}`);

  expect(without.code).toBe(0);
  expect(loadedLine(without.stderr)).toBe("@aws-sdk/client-route-53");
  // moto knows no group for this instance: there is no hook to complete, and the run still succeeds.
  expect(withSection.code).toBe(0);
  expect(loadedLine(withSection.stderr)).toBe("@aws-sdk/client-auto-scaling, @aws-sdk/client-route-53");
});

/**
 * Node's own modules a process loaded (process.moduleLoadList, written at exit by a preloaded probe). The SDK's HTTP
 * handler loads http, https and http2 as it is evaluated, so a command that never evaluates an AWS client (or any HTTP
 * client) has none of them.
 */
function builtinsLoaded(args: string[]): string[] {
  const dir = mkdtempSync(join(tmpdir(), "bootlace-builtins-"));
  const probe = join(dir, "probe.cjs");
  const out = join(dir, "loaded.json");
  writeFileSync(
    probe,
    'process.on("exit", () => require("fs").writeFileSync(process.env.PROBE_OUT, JSON.stringify(process.moduleLoadList)));',
  );
  // Without the code cache too: what is evaluated must not depend on it.
  for (const cache of ["", join(dir, "cache")]) {
    const r = spawnSync(BUNDLE_NODE, ["--require", probe, BUNDLE, ...args], {
      cwd: REPO_ROOT,
      encoding: "utf8",
      env: { PATH: process.env.PATH, HOME: dir, PROBE_OUT: out, BOOTLACE_CACHE_DIR: cache },
    });
    expect(r.status).toBe(0);
  }
  return (JSON.parse(readFileSync(out, "utf8")) as string[])
    .filter((m) => m.startsWith("NativeModule "))
    .map((m) => m.slice("NativeModule ".length));
}

const httpClients = ["http", "https", "http2", "_http_client", "tls", "internal/deps/undici/undici"];

it.each([
  ["--help"],
  ["--version"],
  ["validate", "packaging/bootlace.yaml"],
  ["iam-policy", "--config", "packaging/bootlace.yaml"],
])("%s loads no HTTP client, so no AWS SDK either", (...args) => {
  const loaded = builtinsLoaded(args);
  expect(loaded).toContain("fs");
  expect(loaded.filter((m) => httpClients.includes(m))).toEqual([]);
});

test("the bundle holds the AWS commands bootlace sends, as agent/aws/sdk/ names them, and no other", () => {
  const dir = join(REPO_ROOT, "agent", "aws", "sdk");
  const named = readdirSync(dir)
    .flatMap((file) => [...readFileSync(join(dir, file), "utf8").matchAll(/\b([A-Z]\w+Command)\b/g)].map((m) => m[1]))
    .sort();
  // esbuild's keepNames gives every class its name as a string: one per command class in the bundle.
  const bundled = [...new Set([...readFileSync(BUNDLE, "latin1").matchAll(/"([A-Z]\w+Command)"/g)].map((m) => m[1]))];
  expect(named).toContain("DescribeInstancesCommand");
  expect(bundled.sort()).toEqual(named);
});
