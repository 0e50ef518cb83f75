import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { mkdir, mkdtemp, readdir, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { systemClock } from "../../agent/core/clock";
import { LockBusyError, acquireLock } from "../../agent/root/lock";

const deadlineIn = (ms: number) => ({ at: Date.now() + ms, signal: new AbortController().signal });

async function lockPath(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), "bootlace-lock-")), "run", "bootlace.lock");
}

/** A process's start time as /proc/PID/stat gives it (field 22). */
async function startOf(pid: number): Promise<string> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19]!;
}

/** A lock held by `pid` started at `start`, as another bootlace would have left it. */
async function heldBy(path: string, pid: number, start: string): Promise<string> {
  const name = `${pid}.${start}.0123456789abcdef`;
  await mkdir(path, { recursive: true });
  await writeFile(join(path, name), `${pid}\n`);
  return name;
}

function sleeper(): ChildProcess {
  return spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"]);
}

async function gonePid(): Promise<number> {
  const gone = spawn(process.execPath, ["-e", "0"]);
  await new Promise((r) => gone.on("exit", r));
  return gone.pid!;
}

describe("the run lock", () => {
  it("is a directory holding one entry that names its owner, and is gone after release", async () => {
    const path = await lockPath();
    const lock = await acquireLock(path, systemClock, deadlineIn(5000));
    const entries = await readdir(path);
    expect(entries).toEqual([expect.stringMatching(new RegExp(`^${process.pid}\\.${await startOf(process.pid)}\\.`))]);
    expect((await readFile(join(path, entries[0]!), "utf8")).trim()).toBe(String(process.pid));
    await lock.release();
    await expect(readdir(path)).rejects.toThrow(/ENOENT/);
    expect(await readdir(dirname(path))).toEqual([]);
  });

  it("makes a second holder wait until the first releases", async () => {
    const path = await lockPath();
    const events: string[] = [];
    const first = await acquireLock(path, systemClock, deadlineIn(5000));
    const second = acquireLock(path, systemClock, deadlineIn(5000)).then((l) => {
      events.push("second acquired");
      return l;
    });
    await new Promise((r) => setTimeout(r, 700));
    events.push("first released");
    await first.release();
    await (await second).release();
    expect(events).toEqual(["first released", "second acquired"]);
  });

  it("lets exactly one of several in-process agents hold it at a time", async () => {
    const path = await lockPath();
    let holders = 0;
    let most = 0;
    await Promise.all(
      [1, 2, 3, 4].map(async () => {
        const lock = await acquireLock(path, systemClock, deadlineIn(10_000), { pollMs: 10 });
        holders++;
        most = Math.max(most, holders);
        await new Promise((r) => setTimeout(r, 50));
        holders--;
        await lock.release();
      }),
    );
    expect(most).toBe(1);
  });

  it("gives up at the deadline while a live process holds it, naming the pid, and leaves its entry", async () => {
    const path = await lockPath();
    const holder = sleeper();
    try {
      const name = await heldBy(path, holder.pid!, await startOf(holder.pid!));
      const error = await acquireLock(path, systemClock, deadlineIn(1200)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockBusyError);
      expect((error as Error).message).toContain(`pid ${holder.pid}`);
      expect(await readdir(path)).toEqual([name]);
      expect(await readdir(dirname(path))).toEqual(["bootlace.lock"]);
    } finally {
      holder.kill();
    }
  });

  it("takes over a lock whose owner is gone (a crash or power loss)", async () => {
    const path = await lockPath();
    const dead = await heldBy(path, await gonePid(), "12345");

    const lock = await acquireLock(path, systemClock, deadlineIn(2000));

    const entries = await readdir(path);
    expect(entries).not.toContain(dead);
    expect(entries).toEqual([expect.stringMatching(new RegExp(`^${process.pid}\\.`))]);
    await lock.release();
  });

  it("takes over a lock whose pid now belongs to another process (a pid reused after a reboot)", async () => {
    const path = await lockPath();
    const other = sleeper();
    try {
      const realStart = await startOf(other.pid!);
      await heldBy(path, other.pid!, String(Number(realStart) - 1));
      const lock = await acquireLock(path, systemClock, deadlineIn(2000));
      expect(await readdir(path)).toEqual([expect.stringMatching(new RegExp(`^${process.pid}\\.`))]);
      await lock.release();

      // Also this very process's pid, left by an earlier process that had it.
      await heldBy(path, process.pid, String(Number(await startOf(process.pid)) - 1));
      await (await acquireLock(path, systemClock, deadlineIn(2000))).release();
    } finally {
      other.kill();
    }
  });

  it("removes what acquirers killed before their rename left beside it, and nothing of live ones", async () => {
    const path = await lockPath();
    const live = sleeper();
    try {
      await mkdir(dirname(path), { recursive: true });
      const deadAside = `.bootlace.lock.${await gonePid()}.777.00ff`;
      const liveAside = `.bootlace.lock.${live.pid}.${await startOf(live.pid!)}.00ff`;
      await mkdir(join(dirname(path), deadAside));
      await mkdir(join(dirname(path), liveAside));

      await (await acquireLock(path, systemClock, deadlineIn(2000))).release();

      expect(await readdir(dirname(path))).toEqual([liveAside]);
    } finally {
      live.kill();
    }
  });

  it("waits for a live bootlace that still uses a lock file (an upgrade), and removes the file once it is gone", async () => {
    const path = await lockPath();
    const holder = sleeper();
    try {
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, `${holder.pid}\n`);
      const error = await acquireLock(path, systemClock, deadlineIn(1200)).catch((e: unknown) => e);
      expect((error as Error).message).toContain(`another bootlace (pid ${holder.pid}) holds ${path}`);
    } finally {
      holder.kill();
    }
    await writeFile(path, `${await gonePid()}\n`);
    await (await acquireLock(path, systemClock, deadlineIn(2000))).release();
    await expect(readFile(path)).rejects.toThrow(/ENOENT/);
  });
});
