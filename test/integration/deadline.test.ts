// --deadline is a hard bound, end to end with the real bundle: a command that sleeps past it is killed, a configured
// pattern that backtracks without end is stopped, and whatever else holds the process, the watchdog ends it. The file
// stays as it was each time, and state.json says what did not finish. Exit codes only: no timing is asserted (the
// harness's own timeout, far above deadline + grace, is what a run that is not bounded would hit).
import { mkdir, mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { ImdsEmulator } from "../harness/imds-emulator";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let nextCidr = 40;

beforeAll(async () => {
  world = await startWorld();
});

afterAll(() => world?.close());

interface Booted {
  imds: ImdsEmulator;
  root: string;
}

async function boot(config: unknown): Promise<Booted> {
  const { vpcId } = await world.createVpc(`10.${nextCidr++}.0.0/16`);
  const instance = await world.launchInstance({ vpcId, tags: { Name: "web-1", Role: "web" } });
  const imds = await world.startImds({ ...instance, userData: `#bootlace\n${JSON.stringify(config)}\n` });
  return { imds, root: await makeRoot() };
}

const run = (b: Booted, deadline: number, env?: Record<string, string>) =>
  runBootlace(["run", "--json", "--deadline", String(deadline)], {
    imds: b.imds.endpoint,
    aws: world.proxy.endpoint,
    root: b.root,
    timeoutMs: 60_000,
    ...(env && { env }),
  });

async function put(root: string, path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

const read = (root: string, path: string) => readFile(join(root, path), "utf8");

interface State {
  run: { exit_code: number; actions: Record<string, { status: string; error?: string; error_code?: string }> };
}
const state = async (root: string): Promise<State> =>
  JSON.parse(await read(root, "/var/lib/bootlace/state.json")) as State;

const CONF = "port = 80\n";

test.each([
  ["a string check (/bin/sh)", "sleep 100; true"],
  ["an argv check (no shell)", ["sleep", "100"]],
])("%s that sleeps past the deadline is killed: exit 1, the file untouched, state.json says why", async (_, check) => {
  const b = await boot({
    files: [{ path: "/etc/app.conf", replace: [{ match: "^port = .*", with: "port = 8080" }], check }],
  });
  await put(b.root, "/etc/app.conf", CONF);

  const r = await run(b, 6);

  expect(r.timedOut).toBe(false);
  expect(r.code).toBe(1);
  expect(await read(b.root, "/etc/app.conf")).toBe(CONF);
  const files = (await state(b.root)).run.actions.files;
  expect(files?.status).toBe("failed");
  expect(files?.error).toMatch(/stopped at the deadline/);
});

test("a pattern that backtracks without end is stopped at the deadline, naming its key path", async () => {
  const line = `${"a".repeat(40)}!\n`;
  const b = await boot({
    files: [
      { path: "/etc/app.conf", replace: [{ match: "^port = .*", with: "port = 8080" }] },
      {
        path: "/etc/slow.conf",
        replace: [
          { match: "^b", with: "c" },
          { match: "(a+)+$", with: "x" },
        ],
      },
    ],
  });
  await put(b.root, "/etc/app.conf", CONF);
  await put(b.root, "/etc/slow.conf", line);

  const r = await run(b, 5);

  expect(r.timedOut).toBe(false);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/files\.1\.replace\.1\.match "\(a\+\)\+\$" was still running at the deadline/);
  expect(await read(b.root, "/etc/slow.conf")).toBe(line);
  // The other file's edit is done: the pattern held only its own file.
  expect(await read(b.root, "/etc/app.conf")).toBe("port = 8080\n");
  const files = (await state(b.root)).run.actions.files;
  expect(files?.status).toBe("failed");
  expect(files?.error).toMatch(/files\.1\.replace\.1\.match/);
});

test("whatever holds the process past the deadline, the watchdog ends it with exit 1 and says so", async () => {
  const b = await boot({ files: [{ path: "/etc/app.conf", replace: [{ match: "^port = .*", with: "port = 8080" }] }] });
  await put(b.root, "/etc/app.conf", CONF);
  // Something in the process that never lets go (here a timer loaded before the bundle): only the watchdog ends it.
  const dir = await mkdtemp(join(tmpdir(), "bootlace-hold-"));
  await writeFile(join(dir, "hold.cjs"), "setInterval(() => {}, 1000);\n");

  const r = await run(b, 2, { NODE_OPTIONS: `--require ${join(dir, "hold.cjs")}` });

  expect(r.timedOut).toBe(false);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("bootlace: the deadline of 2 s passed and the run did not end: exiting");
  // The run itself had ended and written the file whole before the watchdog fired.
  expect(await read(b.root, "/etc/app.conf")).toBe("port = 8080\n");
  expect((await state(b.root)).run.exit_code).toBe(0);
});
