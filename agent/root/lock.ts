// One run at a time: the run lock, which two holders can never both have, and which a crashed holder does not keep.
//
// The lock is a directory (/run/bootlace.lock) holding one entry named after its owner: "<pid>.<start>.<token>",
// where start is when that process started (from /proc, so a pid reused by another process is told apart) and token
// is random (agents in one process share a pid and a start, so the token tells them apart, with no list kept in
// memory). The directory is made aside, with the owner entry already in it, and renamed into place: rename replaces
// only an absent or empty directory, so of several acquirers exactly one wins, and the lock never exists without its
// owner. A crashed owner's entry is removed by its own unique name once that owner is proven gone (no process with
// that pid and start time): if anyone else already removed it and took the lock, the name no longer exists and
// nothing of theirs is touched; the emptied directory is then taken by the next rename. Releasing removes the owner
// entry, then the directory if it is still empty.
import { randomBytes } from "node:crypto";
import { promises as fs, readFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Clock } from "../core/clock";
import type { Deadline } from "../core/retry";
import { errnoOf, fsError, makeDirs } from "./fs-error";

export class LockBusyError extends Error {
  override readonly name = "LockBusyError";
}

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** How long to wait between attempts while another holder has it (jittered ±50 %); default 250 ms. */
  pollMs?: number;
}

/**
 * A process's state letter and start time in clock ticks since boot (Linux /proc/PID/stat fields 3 and 22); undefined
 * without /proc or when the process is not there.
 */
function procStat(pid: number | "self"): { state: string; start: string } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) is in parentheses and may hold spaces or ")": count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return { state: fields[0] ?? "", start: fields[19] ?? "" };
  } catch {
    return undefined;
  }
}

/** This process: its pid and start time never change while it runs ("-": no /proc to ask). */
const self = { pid: process.pid, start: procStat("self")?.start ?? "-" };

interface Owner {
  pid: number;
  start: string;
  name: string;
}

const ownerName = (token: string) => `${self.pid}.${self.start}.${token}`;

function parseOwner(name: string): Owner | undefined {
  const m = /^(\d+)\.([0-9-]+)\.[0-9a-f]+$/.exec(name);
  return m ? { pid: Number(m[1]), start: m[2]!, name } : undefined;
}

/** Whether the owner still runs. When in doubt (no /proc, another user's process) it counts as alive. */
function alive(o: Owner): boolean {
  if (o.pid === self.pid && o.start === self.start) return true; // another agent in this process, or this one
  try {
    process.kill(o.pid, 0);
  } catch (error) {
    if (errnoOf(error) === "ESRCH") return false;
  }
  const proc = procStat(o.pid);
  if (proc === undefined) return true;
  // A zombie has ended (its parent has not collected it yet); a process with that pid whose start time differs is
  // another process that reused the pid.
  return proc.state !== "Z" && (o.start === "-" || proc.start === o.start);
}

/** What holds the lock now: its owners (one, normally), or a lock file of an earlier bootlace (pid inside). */
async function holders(path: string): Promise<{ owners: Owner[]; foreign: string[] } | undefined> {
  let names: string[];
  try {
    names = await fs.readdir(path);
  } catch (error) {
    const code = errnoOf(error);
    if (code === "ENOENT") return { owners: [], foreign: [] };
    if (code === "ENOTDIR") return undefined;
    throw error;
  }
  const owners = names.map(parseOwner);
  return {
    owners: owners.filter((o): o is Owner => o !== undefined),
    foreign: names.filter((_, i) => owners[i] === undefined),
  };
}

/**
 * A lock file of bootlace before the lock became a directory (its pid inside): while that pid runs it holds the lock;
 * once it is gone the file is removed. Only during an upgrade does an old and a new bootlace meet.
 */
async function legacyHolder(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await fs.readFile(path, "utf8");
  } catch (error) {
    if (errnoOf(error) === "ENOENT") return undefined; // gone already: try again
    throw error;
  }
  const pid = Number.parseInt(text, 10);
  if (Number.isInteger(pid) && pid > 0 && alive({ pid, start: "-", name: "" })) return pid;
  await fs.rm(path, { force: true });
  return undefined;
}

/** Leftover aside directories of acquirers that died before their rename, proven gone like owners. */
async function removeDeadAsides(path: string): Promise<void> {
  const prefix = `.${basename(path)}.`;
  const names = await fs.readdir(dirname(path));
  await Promise.all(
    names
      .filter((n) => n.startsWith(prefix))
      .map((n) => parseOwner(n.slice(prefix.length)))
      .filter((o): o is Owner => o !== undefined && !alive(o))
      .map((o) => fs.rm(join(dirname(path), `${prefix}${o.name}`), { recursive: true, force: true })),
  );
}

type Attempt = { got: Lock } | { busy: string };

async function attempt(path: string, aside: string, name: string): Promise<Attempt> {
  try {
    await fs.rename(aside, path);
    return {
      got: {
        release: async () => {
          await fs.rm(join(path, name), { force: true });
          // Only if still empty: another acquirer may already have renamed its own directory into place (or
          // removed this one, empty, by its own rename).
          await fs.rmdir(path).catch((error: unknown) => {
            if (!["ENOTEMPTY", "EEXIST", "ENOENT"].includes(errnoOf(error) ?? "")) throw error;
          });
        },
      },
    };
  } catch (error) {
    const code = errnoOf(error);
    if (code !== "ENOTEMPTY" && code !== "EEXIST" && code !== "ENOTDIR" && code !== "EISDIR") throw error;
  }
  const now = await holders(path);
  if (now === undefined) {
    const pid = await legacyHolder(path);
    return { busy: pid === undefined ? "" : `pid ${pid}` };
  }
  const live = now.owners.filter(alive);
  // The dead owner's entry by its own name: if someone removed it first and took the lock, this removes nothing.
  await Promise.all(now.owners.filter((o) => !live.includes(o)).map((o) => fs.rm(join(path, o.name), { force: true })));
  if (live.length > 0) return { busy: live.map((o) => `pid ${o.pid}`).join(", ") };
  if (now.foreign.length > 0) return { busy: `unknown entries ${now.foreign.join(", ")}` };
  return { busy: "" }; // emptied just now (or by its holder): try again at once
}

/** Waits (politely, within the deadline) while another bootlace holds the lock; a run never runs twice at once. */
export async function acquireLock(path: string, clock: Clock, deadline: Deadline, o: LockOptions = {}): Promise<Lock> {
  const pollMs = o.pollMs ?? 250;
  const dir = dirname(path);
  const name = ownerName(randomBytes(8).toString("hex"));
  const aside = join(dir, `.${basename(path)}.${name}`);
  try {
    await makeDirs(dir);
    await removeDeadAsides(path);
    await fs.mkdir(aside, { mode: 0o755 });
    // The owner entry; its name says who owns it, its content the pid for people.
    await fs.writeFile(join(aside, name), `${process.pid}\n`);
  } catch (error) {
    await fs.rm(aside, { recursive: true, force: true }).catch(() => undefined);
    throw fsError(`cannot take the run lock ${path}`, error);
  }
  try {
    for (;;) {
      let got: Attempt;
      try {
        got = await attempt(path, aside, name);
      } catch (error) {
        throw fsError(`cannot take the run lock ${path}`, error);
      }
      if ("got" in got) return got.got;
      if (got.busy === "" && clock.now() < deadline.at) continue;
      if (clock.now() + pollMs >= deadline.at) {
        const who = got.busy === "" ? "another bootlace" : `another bootlace (${got.busy})`;
        throw new LockBusyError(`${who} holds ${path}; gave up at the deadline`);
      }
      await clock.sleep(Math.round(pollMs * (0.5 + Math.random())), deadline.signal);
    }
  } finally {
    // Renamed into place when acquired; otherwise ours to remove.
    await fs.rm(aside, { recursive: true, force: true }).catch(() => undefined);
  }
}
