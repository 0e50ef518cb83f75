// Filesystem failures name their real cause and the file: from errors injected where a test machine cannot make them
// (a full disk), and from a real read-only bind mount where this machine allows one (root).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { systemClock } from "../../agent/core/clock";
import { describeCause } from "../../agent/core/errors";
import { fsError } from "../../agent/root/fs-error";
import { RootFs } from "../../agent/root/fs";
import { acquireLock } from "../../agent/root/lock";
import type { WriterFs } from "../../agent/root/write";
import { writeFileAtomic } from "../../agent/root/write";

const errno = (code: string, syscall: string, path: string) =>
  Object.assign(new Error(`${code}: whatever node says, ${syscall} '${path}'`), { code, syscall, path });

describe("fsError", () => {
  const sandbox =
    "; under systemd, bootlace.service and bootlace-watch.service may write only under /etc, /var, /run, /srv and " +
    "/opt: to allow another folder, `systemctl edit bootlace.service` (and bootlace-watch.service) and add " +
    "[Service] ReadWritePaths=FOLDER";
  it.each([
    ["EROFS", "read-only filesystem", sandbox],
    ["ENOSPC", "no space left on the device (disk full)", ""],
    ["EDQUOT", "disk quota exceeded", ""],
    ["EACCES", "permission denied", ""],
    ["EIO", "input/output error (a failing disk?)", ""],
  ])("says %s as %s, keeps the code, and names the step's own path", (code, words, hint) => {
    const error = fsError("cannot write /r/etc/hosts", errno(code, "mkdir", "/r/etc"));
    expect(error).toMatchObject({ code, message: `cannot write /r/etc/hosts: ${words} (mkdir /r/etc)${hint}` });
    expect(describeCause(error)).toBe(`${code}: cannot write /r/etc/hosts: ${words} (mkdir /r/etc)${hint}`);
  });

  it("leaves other errors as they are", () => {
    const plain = new Error("not a filesystem error");
    expect(fsError("cannot write /x", plain)).toBe(plain);
  });
});

describe("the writer's messages", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "bootlace-fserror-"));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("a full disk at the rename: the file is named, the cause is the disk, the file is as it was", async () => {
    const path = join(dir, "app.conf");
    await writeFile(path, "old\n");
    const full: WriterFs = {
      rename: (from) => Promise.reject(errno("ENOSPC", "rename", from)),
      link: () => Promise.reject(errno("EPERM", "link", "")),
    };

    const error = await writeFileAtomic({ path, content: "new\n" }, full).catch((e: unknown) => e);

    expect(error).toMatchObject({
      code: "ENOSPC",
      message: expect.stringMatching(
        new RegExp(`^cannot write ${path}: no space left on the device \\(disk full\\)`),
      ) as unknown,
    });
    expect(await readFile(path, "utf8")).toBe("old\n");
  });
});

/** Whether this machine lets the test make a read-only bind mount (root, mount(8) present and permitted). */
function canBindReadOnly(): boolean {
  const probe = mkdtempSync(join(tmpdir(), "bootlace-ro-probe-"));
  try {
    mkdirSync(join(probe, "ro"));
    execFileSync("mount", ["--bind", "-o", "ro", probe, join(probe, "ro")], { stdio: "ignore" });
    execFileSync("umount", [join(probe, "ro")], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}

const readOnly = canBindReadOnly();
if (!readOnly) process.stderr.write("fs-error.test: no read-only bind mount here (needs root); those cases skip\n");

(readOnly ? describe : describe.skip)("on a read-only filesystem (a read-only bind mount)", () => {
  let base: string;
  let root: string;
  beforeEach(async () => {
    base = await mkdtemp(join(tmpdir(), "bootlace-ro-"));
    root = join(base, "root");
    await mkdir(join(base, "src", "etc"), { recursive: true });
    await writeFile(join(base, "src", "etc", "hosts"), "127.0.0.1 localhost\n");
    await mkdir(root);
    execFileSync("mount", ["--bind", "-o", "ro", join(base, "src"), root]);
  });
  afterEach(async () => {
    execFileSync("umount", [root]);
    await rm(base, { recursive: true, force: true });
  });

  it("state.json's directories cannot be made: says read-only filesystem, not ENOENT", async () => {
    const error = await new RootFs(root)
      .write({ path: "/var/lib/bootlace/state.json", content: "{}\n", createDirs: true })
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "EROFS",
      message: expect.stringMatching(
        `^cannot write ${root}/var/lib/bootlace/state.json: read-only filesystem \\(mkdir ${root}/var\\); under systemd`,
      ) as unknown,
    });
  });

  it("a file cannot be replaced: says read-only filesystem", async () => {
    const error = await new RootFs(root).write({ path: "/etc/hosts", content: "new\n" }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: "EROFS", message: expect.stringContaining("read-only filesystem") as unknown });
    expect(describeCause(error)).toMatch(new RegExp(`^EROFS: cannot write ${root}/etc/hosts: read-only filesystem`));
  });

  it("the run lock cannot be taken: says read-only filesystem", async () => {
    const error = await acquireLock(join(root, "run/bootlace.lock"), systemClock, {
      at: Date.now() + 2000,
      signal: new AbortController().signal,
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "EROFS",
      message: expect.stringMatching(
        `^cannot take the run lock ${root}/run/bootlace.lock: read-only filesystem \\(mkdir ${root}/run\\); under systemd`,
      ) as unknown,
    });
  });
});
