// One run at a time: an exclusive lock file holding the owner's pid; a lock whose owner is gone is taken over.
import { promises as fs } from "node:fs";
import { dirname } from "node:path";
import type { Clock } from "../core/clock";
import type { Deadline } from "../core/retry";

export class LockBusyError extends Error {
  override readonly name = "LockBusyError";
}

export interface Lock {
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Lock files this process holds: in-process agents share a pid, so the pid alone cannot tell them apart. */
const heldHere = new Set<string>();

async function tryAcquire(path: string): Promise<Lock | number> {
  if (heldHere.has(path)) return process.pid;
  try {
    const handle = await fs.open(path, "wx", 0o644);
    heldHere.add(path);
    await handle.writeFile(`${process.pid}\n`);
    await handle.close();
    return {
      release: async () => {
        await fs.rm(path, { force: true });
        heldHere.delete(path);
      },
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    if (heldHere.has(path)) return process.pid; // another agent in this process won the same race
    const pid = Number.parseInt(await fs.readFile(path, "utf8").catch(() => ""), 10);
    // Our own pid in a lock we do not hold is a leftover of an earlier process that had the same pid.
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) return pid;
    // The owner is gone (crash, power loss): take the lock over.
    await fs.rm(path, { force: true });
    return tryAcquire(path);
  }
}

/** Waits (politely, within the deadline) while another bootlace holds the lock; a run never runs twice at once. */
export async function acquireLock(path: string, clock: Clock, deadline: Deadline): Promise<Lock> {
  await fs.mkdir(dirname(path), { recursive: true });
  for (;;) {
    const got = await tryAcquire(path);
    if (typeof got !== "number") return got;
    if (clock.now() + 500 >= deadline.at) {
      throw new LockBusyError(`another bootlace (pid ${got}) holds ${path}; gave up at the deadline`);
    }
    await clock.sleep(500, deadline.signal);
  }
}
