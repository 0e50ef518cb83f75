import { spawn } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../agent/core/clock";
import { LockBusyError, acquireLock } from "../../agent/root/lock";

const deadlineIn = (ms: number) => ({ at: Date.now() + ms, signal: new AbortController().signal });

async function lockPath(): Promise<string> {
  return join(await mkdtemp(join(tmpdir(), "bootlace-lock-")), "run", "bootlace.lock");
}

describe("the run lock", () => {
  it("holds the owner's pid and is gone after release", async () => {
    const path = await lockPath();
    const lock = await acquireLock(path, systemClock, deadlineIn(5000));
    expect((await readFile(path, "utf8")).trim()).toBe(String(process.pid));
    await lock.release();
    await expect(readFile(path)).rejects.toThrow(/ENOENT/);
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
        const lock = await acquireLock(path, systemClock, deadlineIn(10_000));
        holders++;
        most = Math.max(most, holders);
        await new Promise((r) => setTimeout(r, 50));
        holders--;
        await lock.release();
      }),
    );
    expect(most).toBe(1);
  });

  it("gives up at the deadline while a live process holds it, naming the pid", async () => {
    const path = await lockPath();
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 20000)"]);
    try {
      await acquireLock(path, systemClock, deadlineIn(5000)).then((l) => l.release());
      await writeFile(path, `${holder.pid}\n`);
      const error = await acquireLock(path, systemClock, deadlineIn(1200)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LockBusyError);
      expect((error as Error).message).toContain(`pid ${holder.pid}`);
    } finally {
      holder.kill();
    }
  });

  it("takes over a lock whose owner is gone (a crash or power loss)", async () => {
    const path = await lockPath();
    const gone = spawn(process.execPath, ["-e", "0"]);
    await new Promise((r) => gone.on("exit", r));
    await acquireLock(path, systemClock, deadlineIn(5000)).then((l) => l.release());
    await writeFile(path, `${gone.pid}\n`);

    const lock = await acquireLock(path, systemClock, deadlineIn(2000));

    expect((await readFile(path, "utf8")).trim()).toBe(String(process.pid));
    await lock.release();
  });
});
