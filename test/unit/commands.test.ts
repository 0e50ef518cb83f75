// The user's commands: an argv spawned without a shell (a hostile argument arrives as one argument, verbatim), the
// environment it is given and nothing else, a missing program in words; at the deadline the whole process group is
// stopped, even what ignores SIGTERM.
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

const sh = (text: string) => ["/bin/sh", "-c", text];

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
  const r = await runCommand(sh("echo hello; exit 3"), { cwd: dir, signal: new AbortController().signal });
  expect(r).toEqual({ code: 3, signal: null, output: "hello" });
});

test("at the deadline the shell and what it started are stopped", async () => {
  const deadline = new AbortController();
  const pidFile = join(dir, "pid");
  const running = runCommand(sh(`sleep 100 & echo $! > ${pidFile}; wait; true`), { cwd: dir, signal: deadline.signal });
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
  const running = runCommand(sh(`trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 1; done`), {
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
  const r = await runCommand(sh(`touch ${join(dir, "ran")}`), { cwd: dir, signal: deadline.signal });
  expect(r.error).toMatch(/deadline/);
  await expect(readFile(join(dir, "ran"))).rejects.toThrow();
});

test("an argv runs without a shell: each element arrives as one argument, verbatim", async () => {
  const hostile = ["$(touch pwned)", "; touch pwned", "`touch pwned`", "a b\nc", "'\"", "*"];
  const r = await runCommand(["/bin/sh", "-c", 'for a in "$@"; do printf "%s|" "$a"; done > out', "sh", ...hostile], {
    cwd: dir,
    signal: new AbortController().signal,
  });
  expect(r).toEqual({ code: 0, signal: null, output: "" });
  expect(await readFile(join(dir, "out"), "utf8")).toBe(hostile.map((a) => `${a}|`).join(""));
  await expect(readFile(join(dir, "pwned"))).rejects.toThrow(/ENOENT/);
});

test("the command sees the environment it is given and nothing else of bootlace's", async () => {
  process.env.AWS_SECRET_ACCESS_KEY = "not for commands";
  try {
    const env = { PATH: "/usr/bin:/bin", BOOTLACE_TAG_X: "$(touch pwned)" };
    const r = await runCommand(["env"], { cwd: dir, signal: new AbortController().signal, env });
    expect(r.output.split("\n").sort()).toEqual(["BOOTLACE_TAG_X=$(touch pwned)", "PATH=/usr/bin:/bin"]);
  } finally {
    delete process.env.AWS_SECRET_ACCESS_KEY;
  }
});

test("a program that does not exist is said to be not found, not a trace", async () => {
  const env = { PATH: "/usr/bin:/bin" };
  const signal = new AbortController().signal;
  const r = await runCommand(["no-such-program-here", "x"], { cwd: dir, signal, env });
  expect(r.error).toBe('not run: "no-such-program-here" not found in PATH (/usr/bin:/bin)');
  expect(r.code).not.toBe(0);
  const absolute = await runCommand([join(dir, "nope")], { cwd: dir, signal, env });
  expect(absolute.error).toBe(`not run: ${JSON.stringify(join(dir, "nope"))} not found`);
  const noFolder = await runCommand(["true"], { cwd: join(dir, "gone"), signal, env });
  expect(noFolder.error).toBe(`not run: the folder ${join(dir, "gone")} it runs in does not exist`);
});

test("an argv command is stopped at the deadline like a shell", async () => {
  const deadline = new AbortController();
  const running = runCommand(["sleep", "100"], { cwd: dir, signal: deadline.signal });
  await new Promise((r) => setTimeout(r, 100));
  deadline.abort();
  const r = await running;
  expect(r.error).toBe("stopped at the deadline");
  expect(r.signal).toBe("SIGTERM");
});
