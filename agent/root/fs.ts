// The one door to the filesystem under --root: every read, write, lock and stat of the instance's files goes through
// a RootFs, which maps the instance's absolute paths ("/etc/hosts") to where they are (root + path) and refuses a path
// that would leave the root. Only "not found" reads as absence; every other error (permission, I/O) is thrown.
import { promises as fs } from "node:fs";
import type { Dirent, Stats } from "node:fs";
import { isAbsolute, normalize, relative, resolve, sep } from "node:path";
import type { Clock } from "../core/clock";
import { ConfigError } from "../core/errors";
import type { Deadline } from "../core/retry";
import type { Lock } from "./lock";
import { acquireLock } from "./lock";
import { paths } from "./paths";
import type { WriteRequest, WriteResult } from "./write";
import { writeFileAtomic } from "./write";

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

export class RootFs {
  /** The root as an absolute, normalised host path ("/" in production). */
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
  }

  /**
   * Where the instance's absolute path `path` is on this host: under the root. A relative path, or one whose ".."
   * would climb out of the root, is refused (`at` names the configuration key for the message).
   */
  path(path: string, at?: string): string {
    if (!isAbsolute(path)) throw new ConfigError(`${JSON.stringify(path)} is not an absolute path`, undefined, at);
    const inside = normalize(path);
    const real = resolve(this.root, `.${inside}`);
    const rel = relative(this.root, real);
    if (rel.startsWith("..") || isAbsolute(rel)) {
      throw new ConfigError(`${JSON.stringify(path)} leaves the root ${this.root}`, undefined, at);
    }
    return real;
  }

  /** The instance's path for a host path under the root (the inverse of path()), for messages. */
  inside(real: string): string {
    const rel = relative(this.root, real);
    return `/${rel.split(sep).join("/")}`;
  }

  readBytes(path: string): Promise<Buffer | undefined> {
    return unlessAbsent(fs.readFile(this.path(path)));
  }

  readText(path: string): Promise<string | undefined> {
    return unlessAbsent(fs.readFile(this.path(path), "utf8"));
  }

  /** The names in a directory; undefined when it does not exist. */
  readDir(path: string): Promise<string[] | undefined> {
    return unlessAbsent(fs.readdir(this.path(path)));
  }

  readDirEntries(path: string): Promise<Dirent[] | undefined> {
    return unlessAbsent(fs.readdir(this.path(path), { withFileTypes: true }));
  }

  stat(path: string): Promise<Stats | undefined> {
    return unlessAbsent(fs.stat(this.path(path)));
  }

  lstat(path: string): Promise<Stats | undefined> {
    return unlessAbsent(fs.lstat(this.path(path)));
  }

  /** The one writer (staged, checked, renamed, fsync'd), at the instance's path. */
  write(request: WriteRequest): Promise<WriteResult> {
    return writeFileAtomic({
      ...request,
      path: this.path(request.path),
      ...(request.backup !== undefined && { backup: this.path(request.backup) }),
    });
  }

  /** The run lock (/run/bootlace.lock under the root). */
  lock(clock: Clock, deadline: Deadline): Promise<Lock> {
    return acquireLock(this.path(paths.lock), clock, deadline);
  }
}
