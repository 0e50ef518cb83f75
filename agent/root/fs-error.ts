// Filesystem failures in a person's words: what bootlace was doing, on which file, and the cause by its name (a
// read-only filesystem, a full disk, a permission) rather than whatever step happened to notice it first.
import { promises as fs } from "node:fs";
import { dirname } from "node:path";

const causes: Record<string, string> = {
  EACCES: "permission denied",
  EPERM: "operation not permitted",
  EROFS: "read-only filesystem",
  ENOSPC: "no space left on the device (disk full)",
  EDQUOT: "disk quota exceeded",
  EISDIR: "it is a directory",
  ENOTDIR: "not a directory (it, or a folder on its path)",
  ENOENT: "no such file or directory",
  EIO: "input/output error (a failing disk?)",
  ELOOP: "too many levels of symbolic links",
  ENAMETOOLONG: "name too long",
  EMFILE: "too many open files",
  ENFILE: "too many open files in the system",
};

/**
 * Where a read-only filesystem most often comes from on an instance: the units' sandbox (ProtectSystem=strict with
 * ReadWritePaths, docs/boot-integration.md). Said with every EROFS so a file outside the allowed paths is reported
 * with its fix, not silently broken.
 */
const sandboxHint =
  "; under systemd, bootlace.service and bootlace-watch.service may write only under /etc, /var, /run, /srv and " +
  "/opt: to allow another folder, `systemctl edit bootlace.service` (and bootlace-watch.service) and add " +
  "[Service] ReadWritePaths=FOLDER";

/** A failed filesystem call, its errno code kept (`code`, so --json's error_code says "EROFS") and the file named. */
export class FsError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
    /** The cause alone, in words ("read-only filesystem"), for a caller that names the file itself. */
    readonly words: string = message,
  ) {
    super(message, options);
  }
}

/** The cause of a filesystem failure in words with its code ("it is a directory (EISDIR)"), else the message. */
export function fsCause(error: unknown): string {
  return error instanceof FsError ? `${error.words} (${error.code})` : (error as Error).message;
}

/** The errno code of a Node filesystem error, if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/**
 * `doing` ("cannot write /etc/hosts") with the cause in words. A Node error that is not a filesystem one, or is
 * already an FsError, passes through as it is.
 */
export function fsError(doing: string, error: unknown): unknown {
  const code = errnoOf(error);
  if (code === undefined || error instanceof FsError) return error;
  const e = error as NodeJS.ErrnoException;
  const words = causes[code] ?? e.message;
  // Name the step's own path when it is not the file itself (the directory whose creation failed...).
  const step = e.path !== undefined && !doing.endsWith(e.path) ? ` (${e.syscall ?? "at"} ${e.path})` : "";
  const hint = code === "EROFS" ? sandboxHint : "";
  return new FsError(code, `${doing}: ${words}${step}${hint}`, { cause: error }, `${words}${hint}`);
}

/**
 * mkdir -p that reports the real cause: Node's recursive mkdir says ENOENT for a directory it cannot create under a
 * missing parent even when the parent cannot be made because the filesystem is read-only. This makes each missing
 * level in turn, so the error is the first level's own.
 */
export async function makeDirs(dir: string): Promise<void> {
  try {
    await fs.mkdir(dir);
  } catch (error) {
    const code = errnoOf(error);
    if (code === "EEXIST") {
      if ((await fs.stat(dir)).isDirectory()) return;
      throw error;
    }
    if (code !== "ENOENT" || dirname(dir) === dir) throw error;
    await makeDirs(dirname(dir));
    await fs.mkdir(dir).catch((again: unknown) => {
      if (errnoOf(again) !== "EEXIST") throw again;
    });
  }
}
