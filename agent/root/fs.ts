// The one door to the filesystem under --root: every read, write, lock and stat of the instance's files goes through
// a RootFs, which maps the instance's absolute paths ("/etc/hosts") to where they are (root + path). Symbolic links are
// followed hop by hop as the image would see them (an absolute target is taken under the root too), and a path or a
// link that would leave the root is refused. Only "not found" reads as absence; every other error (permission, a
// directory where a file should be, I/O) is thrown with the file named.
import { promises as fs } from "node:fs";
import type { Dirent, Stats } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Clock } from "../core/clock";
import { ConfigError } from "../core/errors";
import type { Deadline } from "../core/retry";
import { errnoOf, fsError } from "./fs-error";
import type { Lock, LockOptions } from "./lock";
import { acquireLock } from "./lock";
import { paths } from "./paths";
import type { WriteRequest, WriteResult } from "./write";
import { removeLeftovers, writeFileAtomic } from "./write";

/** Error codes that mean "there is nothing at this path" (a missing file, or a missing or non-directory parent). */
const absentCodes = new Set(["ENOENT", "ENOTDIR"]);

export function isAbsent(error: unknown): boolean {
  return absentCodes.has((error as NodeJS.ErrnoException | undefined)?.code ?? "");
}

/** The value of an operation, or undefined when the path does not exist; any other failure is thrown. */
export async function unlessAbsent<T>(op: Promise<T>): Promise<T | undefined> {
  try {
    return await op;
  } catch (error) {
    if (isAbsent(error)) return undefined;
    throw error;
  }
}

/** Linux's limit on symbolic links followed while resolving one path. */
const MAX_HOPS = 40;

/** Where an instance's path is on this host once its links are followed, and what is there. */
export interface Resolved {
  /** The host path (under the root). */
  real: string;
  /** The instance's path of the same file (links followed): what the writer is given. */
  path: string;
  /** lstat of `real`; undefined when nothing is there. */
  stat?: Stats;
}

export class RootFs {
  /** The root as an absolute, normalised host path ("/" in production). */
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /**
   * Where the instance's absolute path `path` is on this host: under the root, links not followed. A relative path,
   * or one with a ".." part (it could climb out of the root), is refused (`at` names the configuration key).
   */
  path(path: string, at?: string): string {
    if (!isAbsolute(path)) throw new ConfigError(`${JSON.stringify(path)} is not an absolute path`, undefined, at);
    if (path.split("/").includes("..")) {
      throw new ConfigError(`${JSON.stringify(path)} has a ".." part, which could leave the root`, undefined, at);
    }
    const real = resolve(this.root, `.${path}`);
    if (!this.contains(real)) {
      throw new ConfigError(`${JSON.stringify(path)} leaves the root ${this.root}`, undefined, at);
    }
    return real;
  }

  /** The instance's path for a host path under the root (the inverse of path()), for messages. */
  inside(real: string): string {
    const rel = relative(this.root, real);
    return `/${rel.split(sep).join("/")}`;
  }

  private contains(real: string): boolean {
    const rel = relative(this.root, real);
    return rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
  }

  /**
   * Follows `path` component by component under the root: a link in a parent directory is always followed, the last
   * component's only when `followLast`. An absolute link target is taken under the root (as the image sees it); a
   * target whose ".." climbs above the root is refused (under "/" there is nothing above: it stays at "/", as the
   * kernel does). A missing component ends the walk: the rest is where the file would be.
   */
  private async walk(path: string, followLast: boolean, at?: string): Promise<Resolved> {
    this.path(path, at);
    const parts = (p: string) => p.split("/").filter((x) => x !== "" && x !== ".");
    let queue = parts(path);
    let dir = this.root;
    const outOfRoot = () =>
      new ConfigError(`${path}: a symbolic link on the way leads out of the root ${this.root}`, undefined, at);
    let hops = 0;
    while (queue.length > 0) {
      const name = queue.shift()!;
      if (name === "..") {
        if (dir === this.root && this.root !== "/") {
          throw outOfRoot();
        }
        dir = dirname(dir);
        continue;
      }
      const next = join(dir, name);
      let stat: Stats | undefined;
      try {
        stat = await unlessAbsent(fs.lstat(next));
      } catch (error) {
        throw fsError(`cannot read ${next}`, error);
      }
      const rest = () => {
        const real = resolve(next, ...queue);
        if (!this.contains(real)) {
          throw outOfRoot();
        }
        return real;
      };
      if (stat === undefined) {
        const real = rest();
        return { real, path: this.inside(real) };
      }
      if (stat.isSymbolicLink() && (queue.length > 0 || followLast)) {
        if (++hops > MAX_HOPS) throw new ConfigError(`${path}: too many levels of symbolic links`, undefined, at);
        let target: string;
        try {
          target = await fs.readlink(next);
        } catch (error) {
          throw fsError(`cannot read the link ${next}`, error);
        }
        if (target.startsWith("/")) dir = this.root;
        queue = [...parts(target), ...queue];
        continue;
      }
      if (queue.length > 0 && !stat.isDirectory()) {
        // A file where a directory should be: nothing can be at the path (ENOTDIR reads as absence).
        const real = rest();
        return { real, path: this.inside(real) };
      }
      if (queue.length === 0) return { real: next, path: this.inside(next), stat };
      dir = next;
    }
    return { real: dir, path: this.inside(dir), stat: await fs.lstat(dir) };
  }

  /**
   * The regular file to read or write at `path`: links followed (unless `follow` is false: then a link is refused),
   * every hop inside the root. A directory, a link not to be followed, or anything but a regular file is a
   * configuration error at `at`. No stat means no file there (yet).
   */
  async resolveFile(path: string, o: { follow: boolean; at?: string }): Promise<Resolved> {
    const found = await this.walk(path, o.follow, o.at);
    const st = found.stat;
    if (st?.isSymbolicLink()) {
      throw new ConfigError(
        `${path} is a symbolic link; bootlace does not write through links unless follow_symlinks: true`,
        undefined,
        o.at,
      );
    }
    if (st?.isDirectory()) throw new ConfigError(`${path} is a directory, not a file`, undefined, o.at);
    if (st && !st.isFile()) throw new ConfigError(`${path} is not a regular file`, undefined, o.at);
    return found;
  }

  /**
   * `op` on the host path of `path`, every link followed inside the root; undefined when nothing is there. Anything
   * that is there but cannot be read as asked (a directory read as a file, a file listed as a directory) is an error.
   */
  private async read<T>(path: string, what: string, op: (real: string) => Promise<T>): Promise<T | undefined> {
    const found = await this.walk(path, true);
    if (found.stat === undefined) return undefined;
    try {
      return await op(found.real);
    } catch (error) {
      if (errnoOf(error) === "ENOENT") return undefined; // removed since the walk
      throw fsError(`cannot read ${what} ${found.real}`, error);
    }
  }

  readBytes(path: string): Promise<Buffer | undefined> {
    return this.read(path, "the file", (real) => fs.readFile(real));
  }

  readText(path: string): Promise<string | undefined> {
    return this.read(path, "the file", (real) => fs.readFile(real, "utf8"));
  }

  /** The names in a directory; undefined when it does not exist. */
  readDir(path: string): Promise<string[] | undefined> {
    return this.read(path, "the directory", (real) => fs.readdir(real));
  }

  readDirEntries(path: string): Promise<Dirent[] | undefined> {
    return this.read(path, "the directory", (real) => fs.readdir(real, { withFileTypes: true }));
  }

  /** What is at `path`, links followed; undefined when nothing is. */
  async stat(path: string): Promise<Stats | undefined> {
    const found = await this.walk(path, true);
    return found.stat;
  }

  /** What is at `path` itself (a link is not followed; links in its directories are); undefined when nothing is. */
  async lstat(path: string): Promise<Stats | undefined> {
    return (await this.walk(path, false)).stat;
  }

  /**
   * The one writer (staged, checked, renamed, fsync'd), at the instance's path and backup path: the links of their
   * directories are followed inside the root; the file itself must not be a link (the writer refuses one).
   */
  async write(request: WriteRequest): Promise<WriteResult> {
    const [target, backup] = await Promise.all([
      this.walk(request.path, false),
      request.backup === undefined ? undefined : this.walk(request.backup, false),
    ]);
    return writeFileAtomic({ ...request, path: target.real, ...(backup && { backup: backup.real }) });
  }

  /** Renames a file (both paths the instance's; links of their directories followed inside the root). */
  async rename(from: string, to: string): Promise<void> {
    const [a, b] = await Promise.all([this.walk(from, false), this.walk(to, false)]);
    try {
      await fs.rename(a.real, b.real);
    } catch (error) {
      throw fsError(`cannot rename ${a.real} to ${b.real}`, error);
    }
  }

  /** Removes what a killed writer left beside `path` (and its backup), also when nothing is to be written to it. */
  async removeLeftovers(path: string, backup?: string): Promise<void> {
    const [target, kept] = await Promise.all([
      this.walk(path, false),
      backup === undefined ? undefined : this.walk(backup, false),
    ]);
    await Promise.all([removeLeftovers(target.real), kept && removeLeftovers(kept.real)]);
  }

  /** The run lock (/run/bootlace.lock under the root). */
  async lock(clock: Clock, deadline: Deadline, o?: LockOptions): Promise<Lock> {
    return acquireLock((await this.walk(paths.lock, false)).real, clock, deadline, o);
  }
}
