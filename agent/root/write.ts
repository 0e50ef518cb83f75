// The one writer of files (config files and state.json alike). A file is replaced only when its content changes, and
// is never torn or missing, whenever the process dies: the new content is staged in a temp file in the same directory,
// given its owner and mode, fsync'd, checked, then renamed over the old one, and the directory fsync'd. The old
// content is kept as a backup (a hard link to the old inode: no copy, same owner and mode, atomic).
//
// Where rename cannot replace the file (EBUSY/EXDEV: a file bind-mounted on its own, as Docker does with /etc/hosts)
// the write is refused, not done in place: an in-place write is a truncate and a write, and a crash between or during
// them leaves exactly the torn file this writer exists to prevent. The refusal says so and what to do instead.
import { randomBytes } from "node:crypto";
import { promises as fs } from "node:fs";
import type { Stats } from "node:fs";
import { basename, dirname, join } from "node:path";
import { errnoOf, fsError, makeDirs } from "./fs-error";

export interface WriteRequest {
  path: string;
  content: string | Buffer;
  /** Wanted mode, owner, group; undefined keeps the existing file's (a new file: 0644 and this process's ids). */
  mode?: number;
  uid?: number;
  gid?: number;
  /** Keep the previous content at this path. */
  backup?: string;
  /** Runs on the staged file, which already has its final owner and mode; throwing refuses the write. */
  check?: (staged: string) => Promise<void>;
  /** Create missing parent directories (state.json); managed files refuse a missing directory instead. */
  createDirs?: boolean;
}

export interface WriteResult {
  /** The content was replaced (or the file created). */
  changed: boolean;
  created: boolean;
  /** Only the mode or owner was changed, in place (chmod/chown are atomic). */
  metadataChanged: boolean;
  backup?: string;
}

/** The write was not attempted or was abandoned; the file is as it was. */
export class WriteRefusedError extends Error {
  override readonly name = "WriteRefusedError";
}

/** The check command refused the staged file; the real file is as it was. */
export class CheckFailedError extends Error {
  override readonly name = "CheckFailedError";
}

/** The filesystem calls a test may replace to reach failures a test machine cannot produce (a bind mount). */
export interface WriterFs {
  rename(from: string, to: string): Promise<void>;
  link(existing: string, newPath: string): Promise<void>;
}

const nodeFs: WriterFs = { rename: (a, b) => fs.rename(a, b), link: (a, b) => fs.link(a, b) };

/** Temp files are `.NAME.bootlace-<12 hex>` beside NAME: recognisable, so leftovers of a killed writer are removed. */
const tempName = (path: string): string =>
  join(dirname(path), `.${basename(path)}.bootlace-${randomBytes(6).toString("hex")}`);

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await fs.lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/**
 * Leftovers of a writer killed between staging and rename: ours by name, and one run at a time holds the lock. A
 * missing directory has none; any other failure to look is thrown.
 */
export async function removeLeftovers(path: string): Promise<void> {
  const prefix = `.${basename(path)}.bootlace-`;
  let names: string[];
  try {
    names = await fs.readdir(dirname(path));
  } catch (error) {
    if (errnoOf(error) === "ENOENT" || errnoOf(error) === "ENOTDIR") return;
    throw fsError(`cannot look for leftovers beside ${path}`, error);
  }
  await Promise.all(
    names
      .filter((n) => n.startsWith(prefix) && /^[0-9a-f]{12}$/.test(n.slice(prefix.length)))
      .map((n) => fs.rm(join(dirname(path), n), { force: true })),
  );
}

async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

const wants = (r: WriteRequest, st: Stats) => ({
  mode: r.mode !== undefined && (st.mode & 0o7777) !== r.mode,
  owner: (r.uid !== undefined && st.uid !== r.uid) || (r.gid !== undefined && st.gid !== r.gid),
});

/** Writes content to a staged file with the final owner and mode, fsync'd. */
async function stage(r: WriteRequest, content: Buffer, existing: Stats | undefined): Promise<string> {
  const temp = tempName(r.path);
  // 0600 until the end: the content is not readable by others before its real mode is set.
  const handle = await fs.open(temp, "wx", 0o600);
  try {
    await handle.writeFile(content);
    const uid = r.uid ?? existing?.uid;
    const gid = r.gid ?? existing?.gid;
    const mine = await handle.stat();
    if ((uid !== undefined && uid !== mine.uid) || (gid !== undefined && gid !== mine.gid)) {
      await handle.chown(uid ?? -1, gid ?? -1);
    }
    // After chown, which clears set-id bits.
    await handle.chmod(r.mode ?? (existing ? existing.mode & 0o7777 : 0o644));
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  return temp;
}

/** The old content kept at `backup`: a hard link to the old inode, or (where links are not allowed) a staged copy. */
async function keepBackup(path: string, backup: string, ops: WriterFs): Promise<void> {
  const temp = tempName(backup);
  try {
    await ops.link(path, temp);
  } catch {
    await fs.copyFile(path, temp);
    const st = await fs.stat(path);
    await fs.chown(temp, st.uid, st.gid).catch(() => undefined);
    await fs.chmod(temp, st.mode & 0o7777);
    const handle = await fs.open(temp, "r");
    await handle.sync().finally(() => handle.close());
  }
  try {
    await ops.rename(temp, backup);
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
}

function renameRefusal(path: string, error: unknown): Error {
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== "EBUSY" && code !== "EXDEV") return error as Error;
  return new WriteRefusedError(
    `cannot replace ${path} atomically: rename failed with ${code}, so it is probably a file bind-mounted on its ` +
      `own (as container runtimes do with /etc/hosts). bootlace does not fall back to writing it in place, because ` +
      `a crash during an in-place write leaves a torn file; manage the file where it is mounted from, or mount its ` +
      `directory instead of the file. It was left as it was.`,
  );
}

/**
 * Replaces (or creates) the file with content, only if it differs; see the module comment for the guarantees. Every
 * visit first removes what a killed writer left beside the file. A failure of the filesystem is thrown as an FsError
 * that names the file and the cause (read-only filesystem, disk full, permission).
 */
export async function writeFileAtomic(r: WriteRequest, ops: WriterFs = nodeFs): Promise<WriteResult> {
  try {
    return await replace(r, ops);
  } catch (error) {
    throw fsError(`cannot write ${r.path}`, error);
  }
}

async function replace(r: WriteRequest, ops: WriterFs): Promise<WriteResult> {
  const content = Buffer.isBuffer(r.content) ? r.content : Buffer.from(r.content, "utf8");
  if (r.createDirs) await makeDirs(dirname(r.path));
  await Promise.all([removeLeftovers(r.path), r.backup ? removeLeftovers(r.backup) : undefined]);
  const existing = await lstatOrUndefined(r.path);
  if (existing?.isSymbolicLink()) throw new WriteRefusedError(`${r.path} is a symbolic link; not written through it`);
  if (existing && !existing.isFile()) throw new WriteRefusedError(`${r.path} is not a regular file`);

  if (existing && (await fs.readFile(r.path)).equals(content)) {
    const want = wants(r, existing);
    if (want.owner) await fs.chown(r.path, r.uid ?? existing.uid, r.gid ?? existing.gid);
    // Also after a chown, which clears set-id bits.
    if (want.mode || want.owner) await fs.chmod(r.path, r.mode ?? existing.mode & 0o7777);
    return { changed: false, created: false, metadataChanged: want.mode || want.owner };
  }

  const temp = await stage(r, content, existing);
  try {
    if (r.check) await r.check(temp);
    if (r.backup && existing) await keepBackup(r.path, r.backup, ops);
    await ops.rename(temp, r.path).catch((error: unknown) => {
      throw renameRefusal(r.path, error);
    });
  } catch (error) {
    await fs.rm(temp, { force: true });
    throw error;
  }
  await syncDir(dirname(r.path));
  return {
    changed: true,
    created: existing === undefined,
    metadataChanged: false,
    ...(r.backup && existing && { backup: r.backup }),
  };
}
