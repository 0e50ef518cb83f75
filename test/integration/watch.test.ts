// bootlace watch: in-process (stopped through AgentOptions.control) and as the real bundle (SIGHUP, SIGTERM).
import type { ChildProcess } from "node:child_process";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { runAgent } from "../../agent/agent";
import type { ImdsEmulator, ImdsInstance } from "../harness/imds-emulator";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { TEST_CREDENTIALS, startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;

beforeAll(async () => {
  world = await startWorld();
});

afterAll(() => world?.close());

const HOSTS = "127.0.0.1 localhost\n";

/** Waits until check() is true, polling; fails with `what` after timeoutMs. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting until ${what}`);
}

const contains = (path: string, text: string) => async () => (await readFile(path, "utf8")).includes(text);

async function web(
  vpcId: string,
  config?: unknown,
): Promise<{ instance: ImdsInstance; imds: ImdsEmulator; root: string }> {
  const instance = await world.launchInstance({ vpcId, tags: { Name: "web-1", Role: "web" } });
  const imds = await world.startImds({
    ...instance,
    ...(config !== undefined && { userData: `#bootlace\n${JSON.stringify(config)}\n` }),
  });
  const root = await makeRoot();
  await writeFile(join(root, "etc/hosts"), HOSTS);
  return { instance, imds, root };
}

it("picks up a new peer: rewrites only the file that changed, reloads once per pass, stops when told", async () => {
  const { vpcId } = await world.createVpc("10.70.0.0/16");
  const app1 = await world.launchInstance({ vpcId, tags: { Role: "app" } });
  const { imds, root } = await web(vpcId, {
    watch: { interval: 5 },
    peers: { app: { tags: { Role: "app" } } },
    files: [
      {
        path: "/etc/hosts",
        block: "{{#peers.app}}{{ip}} app.internal\n{{/peers.app}}",
        on_change: "echo reload >> reloads.log",
      },
      { path: "/etc/motd", block: "managed by bootlace\n", on_change: "echo reload >> reloads.log" },
    ],
  });
  const stop = new AbortController();
  let stderr = "";

  const watching = runAgent({
    argv: ["watch", "--root", root],
    env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint, AWS_ENDPOINT_URL: world.proxy.endpoint },
    credentials: () => Promise.resolve(TEST_CREDENTIALS),
    stdout: () => undefined,
    stderr: (t) => (stderr += t),
    control: { stop: stop.signal, reload: new EventTarget() },
  });
  const hosts = join(root, "etc/hosts");
  await until("the first pass wrote app-1", contains(hosts, `${app1.privateIpv4} app.internal`));
  const motd = await stat(join(root, "etc/motd"));

  const app2 = await world.launchInstance({ vpcId, tags: { Role: "app" } });
  await until("a later pass found app-2", contains(hosts, `${app2.privateIpv4} app.internal`));
  stop.abort();
  const code = await watching;

  expect(code).toBe(0);
  expect(stderr).toMatch(/watch stopped/);
  expect(await readFile(hosts, "utf8")).toContain(
    `${app1.privateIpv4} app.internal\n${app2.privateIpv4} app.internal\n`,
  );
  // The second file did not change, so it was not rewritten: same inode, same mtime.
  const motdAfter = await stat(join(root, "etc/motd"));
  expect([motdAfter.ino, motdAfter.mtimeMs]).toEqual([motd.ino, motd.mtimeMs]);
  // One reload for the first pass (two files changed), one for the pass that found app-2.
  expect(await readFile(join(root, "reloads.log"), "utf8")).toBe("reload\nreload\n");
  const state = JSON.parse(await readFile(join(root, "var/lib/bootlace/state.json"), "utf8")) as {
    watch?: { exit_code: number; changes: number };
  };
  expect(state.watch).toMatchObject({ exit_code: 0, changes: 2 });
});

it("the bundle reads its configuration again on SIGHUP (refusing a bad one) and stops cleanly on SIGTERM", async () => {
  const { vpcId } = await world.createVpc("10.71.0.0/16");
  const app = await world.launchInstance({ vpcId, tags: { Role: "app" } });
  const { imds, root } = await web(vpcId);
  const configFile = join(root, "watch.yaml");
  const hostsEntry = { path: "/etc/hosts", block: "{{#peers.app}}{{ip}} app.internal\n{{/peers.app}}" };
  const config = (files: unknown[]) =>
    writeFile(
      configFile,
      JSON.stringify({ watch: { interval: 60 }, peers: { app: { tags: { Role: "app" } } }, files }),
    );
  await config([hostsEntry]);
  let child: ChildProcess | undefined;

  const watching = runBootlace(["watch", "--config", configFile], {
    imds: imds.endpoint,
    aws: world.proxy.endpoint,
    root,
    timeoutMs: 60_000,
    onSpawn: (c) => (child = c),
  });
  await until("the first pass wrote /etc/hosts", contains(join(root, "etc/hosts"), app.privateIpv4));
  await writeFile(configFile, "files: [{ path: relative/path, block: x }]\n");
  child!.kill("SIGHUP");
  await new Promise((r) => setTimeout(r, 1500));
  await mkdir(join(root, "etc/app"));
  await config([hostsEntry, { path: "/etc/app/apps.list", block: "{{#peers.app}}{{ip}}\n{{/peers.app}}" }]);
  // The interval is 60 s: the new file can only appear this soon because SIGHUP woke the watcher.
  child!.kill("SIGHUP");
  await until(
    "the reloaded configuration's file was written",
    contains(join(root, "etc/app/apps.list"), app.privateIpv4),
  );
  child!.kill("SIGTERM");
  const result = await watching;

  expect(result.timedOut).toBe(false);
  expect(result.code).toBe(0);
  expect(result.stderr).toMatch(/files\.0\.path: expected an absolute path/);
  expect(result.stderr).toMatch(/reload refused: watching on with the configuration read before/);
  expect(result.stderr).toMatch(/configuration read again: every 60 s: peers app, 2 files/);
  expect(result.stderr).toMatch(/watch stopped/);
});

it("exits 2 at start with a configuration it refuses, like run", async () => {
  const { vpcId } = await world.createVpc("10.72.0.0/16");
  const { imds, root } = await web(vpcId, {
    files: [{ path: "/etc/hosts", block: "{{#peers.nope}}x{{/peers.nope}}" }],
  });

  const result = await runBootlace(["watch"], { imds: imds.endpoint, aws: world.proxy.endpoint, root });

  expect(result.code).toBe(2);
  expect(result.stderr).toMatch(/files\.0\.block: unknown variable \{\{peers\.nope\}\}: peers\.nope is not configured/);
});
