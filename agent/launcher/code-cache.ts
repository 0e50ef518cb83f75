// The compiled-code cache of the bundle: where it lives, what it is keyed by, and reading and writing it. Pure Node
// built-ins only: this runs before, and outside of, the agent's own code (agent/launcher/main.ts).
//
// V8 checks a code cache only against its own version, its flags and the source's length, not the source's bytes: a
// cache made for another build of the same length would run that build's code. So the file name carries a SHA-256 of
// the source, and a changed bundle looks for another file. Nor does V8 check the payload: a cache with a few bytes
// changed aborts the process inside the deserializer ("Fatal error ... unreachable code", Node 20), so the file carries
// a SHA-256 of its payload, checked before V8 sees it. Whatever goes wrong here (no directory, no permission, a
// truncated or foreign file) costs only the compile the cache would have saved.
import { createHash } from "node:crypto";
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";

export type Env = Record<string, string | undefined>;

/**
 * Where the cache lives: BOOTLACE_CACHE_DIR (empty or "off": no cache); else systemd's CACHE_DIRECTORY (the unit's
 * CacheDirectory=, /var/cache/bootlace); else /var/cache/bootlace for root; else $XDG_CACHE_HOME/bootlace or
 * ~/.cache/bootlace.
 */
export function cacheDirFrom(env: Env, uid: number | undefined, home: () => string = homedir): string | undefined {
  const explicit = env.BOOTLACE_CACHE_DIR;
  if (explicit !== undefined) return explicit === "" || explicit === "off" ? undefined : explicit;
  const systemd = env.CACHE_DIRECTORY?.split(":")[0];
  if (systemd) return systemd;
  if (uid === 0) return "/var/cache/bootlace";
  const base = env.XDG_CACHE_HOME || (home() ? join(home(), ".cache") : "");
  return base ? join(base, "bootlace") : undefined;
}

/**
 * The cache file's name for this source on this Node: the source's SHA-256, Node's version and architecture, and the
 * V8/Node flags it runs with (V8 would refuse a cache made under other flags; a name of its own avoids the churn).
 */
export function cacheFileName(kind: string, source: Buffer | string, execArgv: readonly string[]): string {
  const sourceHash = createHash("sha256").update(source).digest("hex");
  const runtime = createHash("sha256")
    .update([process.version, process.arch, ...execArgv].join("\0"))
    .digest("hex");
  return `bootlace-${kind}-${sourceHash.slice(0, 32)}-${runtime.slice(0, 12)}.v8cache`;
}

/** The file: this magic, the payload's SHA-256, then V8's cached data. */
const MAGIC = Buffer.from("bootlace-v8cache-1\n");
const HEADER = MAGIC.length + 32;

/** What the cache file holds for V8's `data`. */
export function sealCache(data: Buffer): Buffer {
  return Buffer.concat([MAGIC, createHash("sha256").update(data).digest(), data]);
}

/** V8's data from a cache file's bytes, or "corrupt" when they are not what sealCache wrote. */
export function unsealCache(file: Buffer): Buffer | "corrupt" {
  if (file.length <= HEADER || !file.subarray(0, MAGIC.length).equals(MAGIC)) return "corrupt";
  const data = file.subarray(HEADER);
  const sum = createHash("sha256").update(data).digest();
  return sum.equals(file.subarray(MAGIC.length, HEADER)) ? data : "corrupt";
}

/**
 * The cache in `dir`, when there is one this process may trust: the directory and the file must belong to this user
 * (or root) and be writable by no one else, since what is in it runs as this user; and its checksum must match.
 */
export function readCache(dir: string, file: string, uid: number | undefined): Buffer | "corrupt" | undefined {
  let fd: number;
  try {
    if (!trustedOwner(statSync(dir), uid)) return undefined;
    fd = openSync(join(dir, file), "r");
  } catch {
    return undefined;
  }
  try {
    return trustedOwner(fstatSync(fd), uid) ? unsealCache(readFileSync(fd)) : undefined;
  } finally {
    closeSync(fd);
  }
}

/** Writes the cache atomically (temp file + rename) and removes this kind's caches of other builds or Nodes. */
export function writeCache(dir: string, kind: string, file: string, data: Buffer, uid: number | undefined): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (!trustedOwner(statSync(dir), uid)) throw new Error(`${dir} is not this user's alone: no cache in it`);
  const staged = join(dir, `.${file}.${process.pid}.tmp`);
  try {
    writeFileSync(staged, sealCache(data), { mode: 0o644, flag: "wx" });
    renameSync(staged, join(dir, file));
  } catch (error) {
    try {
      unlinkSync(staged);
    } catch {
      // never made
    }
    throw error;
  }
  const kindPrefix = `bootlace-${kind}-`;
  for (const other of readdirSync(dir)) {
    if (other !== file && other.startsWith(kindPrefix) && other.endsWith(".v8cache")) {
      try {
        unlinkSync(join(dir, other));
      } catch {
        // another process's, or already gone
      }
    }
  }
}

function trustedOwner(st: { uid: number; mode: number } | undefined, uid: number | undefined): boolean {
  if (!st) return false;
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) return false;
  return (st.mode & 0o022) === 0;
}
