// state.json read defensively, on real files: damage is set aside and said, never thrown; what is whole is used.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RootFs } from "../../agent/root/fs";
import type { StateFile } from "../../agent/root/state";
import { readState, writeState } from "../../agent/root/state";

const id = "i-0123456789abcdef0";
const now = Date.parse("2026-03-04T05:06:07.089Z");
let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "bootlace-state-"));
  await mkdir(join(root, "var/lib/bootlace"), { recursive: true });
});

afterEach(() => rm(root, { recursive: true, force: true }));

const dir = () => join(root, "var/lib/bootlace");
const put = (text: string) => writeFile(join(dir(), "state.json"), text);
const files = async () => (await readdir(dir())).sort();

const dns = {
  owner: "bootlace",
  records: [{ zoneId: "Z1", name: "a.example.", type: "A", value: "10.0.0.1", ttl: 60, deleteOnShutdown: true }],
};
const eip = {
  allocationId: "eipalloc-1",
  publicIp: "203.0.113.7",
  publicDns: "ec2-203-0-113-7.compute-1.amazonaws.com",
};
const blocks = { blocks: [{ path: "/etc/hosts", name: "main", comment: "#" }] };
const run = {
  started: "2026-03-04T05:00:00.000Z",
  finished: "2026-03-04T05:00:01.000Z",
  exit_code: 0,
  changes: 1,
  failed: [],
  actions: { dns: { status: "ok", changes: [{ kind: "create", target: "a.example. A" }], duration_ms: 12 } },
};
const whole: StateFile = { version: 1, instance_id: id, run, saved: { dns, files: blocks } } as StateFile;

it("reads a whole state as it was written, and changes nothing", async () => {
  await writeState(new RootFs(root), whole);

  const read = await readState(new RootFs(root), { instanceId: id, setAside: { now } });

  expect(read).toEqual({ state: whole, problems: [], lost: [] });
  expect(await files()).toEqual(["state.json"]);
});

it("keeps the lifecycle's records (the warm-pool phase, the stop path's run), and drops a damaged one", async () => {
  const hook = { group: "web", hook: "launch", result: "CONTINUE" as const, heartbeats: 1, attempts: 1 };
  const lifecycle = {
    phase: "wired" as const,
    target_state: "InService",
    by: "run" as const,
    at: run.finished,
    launch_hook: [hook],
  };
  const left = {
    reason: "spot-interruption" as const,
    started: run.started,
    finished: run.finished,
    exit_code: 0,
    termination_hook: [],
  };
  await writeState(new RootFs(root), { ...whole, lifecycle, left });
  expect(await readState(new RootFs(root), { instanceId: id })).toEqual({
    state: { ...whole, lifecycle, left },
    problems: [],
    lost: [],
  });

  await put(JSON.stringify({ ...whole, lifecycle: { ...lifecycle, phase: "parked" }, left }));
  const read = await readState(new RootFs(root), { instanceId: id });
  expect(read.state).toEqual({ ...whole, left });
  expect(read.problems).toEqual([expect.stringMatching(/^the lifecycle record was dropped \(phase: /)]);
});

it("takes no state.json as a first boot, and another instance's as none", async () => {
  expect(await readState(new RootFs(root), { instanceId: id })).toEqual({ problems: [], lost: [] });
  await writeState(new RootFs(root), { ...whole, instance_id: "i-0ther" });
  expect(await readState(new RootFs(root), { instanceId: id, setAside: { now } })).toEqual({ problems: [], lost: [] });
  expect(await files()).toEqual(["state.json"]);
});

it.each([
  ["null", /^it is not a state file of this bootlace \(.*expected object/],
  ["{", /^it is not JSON/],
  ['{"saved":{"files":{"blocks":"x"}}}', /^it is not a state file of this bootlace \(version: /],
  [JSON.stringify({ version: 2, instance_id: id, saved: {} }), /version/],
])("sets aside a state.json that is %s whole, and goes on as on a first boot", async (text, problem) => {
  await put(text);

  const read = await readState(new RootFs(root), { instanceId: id, setAside: { now } });

  expect(read).toEqual({
    problems: [expect.stringMatching(problem)],
    lost: "all",
    keptAs: "/var/lib/bootlace/state.json.bad-20260304T050607.089Z",
  });
  expect(await files()).toEqual(["state.json.bad-20260304T050607.089Z"]);
  expect(await readFile(join(dir(), "state.json.bad-20260304T050607.089Z"), "utf8")).toBe(text);
});

it.each([
  ["files", { files: { blocks: "x" } }, /^what files saved was dropped \(blocks: /],
  ["dns", { dns: { records: "x" } }, /^what dns saved was dropped \(owner: .*; records: /],
  [
    "files",
    { files: { blocks: [{ path: "/../../outside/victim", name: "main", comment: "#" }] } },
    /^what files saved was dropped \(blocks\.0\.path: expected a path without "\." or "\.\." parts/,
  ],
  ["files", { files: { blocks: [{ path: "etc/hosts", name: "main", comment: "#" }] } }, /expected an absolute path/],
])("drops a damaged part (%s) and keeps the rest, the original set aside", async (name, saved, problem) => {
  const text = JSON.stringify({ version: 1, instance_id: id, run, saved: { elastic_ip: eip, ...saved } });
  await put(text);

  const read = await readState(new RootFs(root), { instanceId: id, setAside: { now } });

  expect(read).toEqual({
    state: { version: 1, instance_id: id, run, saved: { elastic_ip: eip } },
    problems: [expect.stringMatching(problem)],
    lost: [name],
    keptAs: "/var/lib/bootlace/state.json.bad-20260304T050607.089Z",
  });
  expect(await readFile(join(dir(), "state.json.bad-20260304T050607.089Z"), "utf8")).toBe(text);
  // What is left is whole: the next read finds nothing to say.
  expect(await readState(new RootFs(root), { instanceId: id, setAside: { now: now + 1 } })).toEqual({
    state: read.state,
    problems: [],
    lost: [],
  });
  expect(await files()).toEqual(["state.json", "state.json.bad-20260304T050607.089Z"]);
});

it("drops a damaged record of a command and a part no action saves, keeping every saved part", async () => {
  await put(JSON.stringify({ version: 1, instance_id: id, run: { exit_code: "x" }, saved: { dns, mystery: 1 } }));

  const read = await readState(new RootFs(root), { instanceId: id, setAside: { now } });

  expect(read.state).toEqual({ version: 1, instance_id: id, saved: { dns } });
  expect(read.problems).toEqual([
    expect.stringMatching(/^the record of the last run was dropped \(/),
    'what mystery saved was dropped (bootlace saves nothing under "mystery")',
  ]);
  expect(read.lost).toEqual([]);
});

it("without setAside (plan, status) says what is wrong and changes nothing", async () => {
  await put("null");

  const read = await readState(new RootFs(root), { instanceId: id });

  expect(read).toEqual({ problems: [expect.stringMatching(/not a state file/)], lost: "all" });
  expect(await files()).toEqual(["state.json"]);
});

it("throws, naming the file, when state.json cannot be read at all", async () => {
  await mkdir(join(dir(), "state.json"));
  await expect(readState(new RootFs(root), { instanceId: id })).rejects.toMatchObject({
    code: "EISDIR",
    message: expect.stringContaining(join(dir(), "state.json")) as unknown,
  });
});
