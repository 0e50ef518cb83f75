// The user's commands at the deadline: the whole process group is stopped, even what ignores SIGTERM.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runCommand } from "../../agent/files/commands";

jest.setTimeout(30_000);

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "bootlace-commands-"));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

/** Running (a zombie waiting for a reaper that a container may not have is not running). */
async function alive(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat !== "" && !/^\d+ \(.*\) Z/.test(stat);
}

/**
 * Gone, within a few seconds: a signalled process may still be running for a moment after the group was killed (it
 * has not been scheduled yet on a loaded machine), so this waits for it rather than looking once.
 */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!(await alive(pid))) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

/** The pid the command wrote to `file`, once it is there. */
async function pidIn(file: string): Promise<number> {
  for (;;) {
    const text = await readFile(file, "utf8").catch(() => "");
    if (text.endsWith("\n")) return Number(text.trim());
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("a command runs and its exit code and output are kept", async () => {
  const r = await runCommand("echo hello; exit 3", { cwd: dir, signal: new AbortController().signal });
  expect(r).toEqual({ code: 3, signal: null, output: "hello" });
});

test("at the deadline the shell and what it started are stopped", async () => {
  const deadline = new AbortController();
  const pidFile = join(dir, "pid");
  const running = runCommand(`sleep 100 & echo $! > ${pidFile}; wait; true`, { cwd: dir, signal: deadline.signal });
  const sleeper = await pidIn(pidFile);
  expect(await alive(sleeper)).toBe(true);
  deadline.abort();
  const r = await running;
  expect(r.error).toBe("stopped at the deadline");
  expect(r.code).not.toBe(0);
  expect(await gone(sleeper)).toBe(true);
});

test("a process that ignores SIGTERM is killed", async () => {
  const deadline = new AbortController();
  const pidFile = join(dir, "pid");
  const running = runCommand(`trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 1; done`, {
    cwd: dir,
    signal: deadline.signal,
  });
  const shell = await pidIn(pidFile);
  deadline.abort();
  const r = await running;
  expect(r.error).toBe("stopped at the deadline");
  expect(r.signal).toBe("SIGKILL");
  expect(await gone(shell)).toBe(true);
});

test("a command is not started once the deadline has passed", async () => {
  const deadline = new AbortController();
  deadline.abort();
  const r = await runCommand(`touch ${join(dir, "ran")}`, { cwd: dir, signal: deadline.signal });
  expect(r.error).toMatch(/deadline/);
  await expect(readFile(join(dir, "ran"))).rejects.toThrow();
});
