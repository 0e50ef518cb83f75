// The one writer, on real files in a temporary folder: only when content changes, owner and mode kept, backup,
// check on the staged file, symlinks and bind mounts refused, leftovers of a killed writer cleaned.
import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { WriterFs } from "../../agent/root/write";
import { CheckFailedError, WriteRefusedError, writeFileAtomic } from "../../agent/root/write";

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "bootlace-write-"));
});

afterEach(() => rm(dir, { recursive: true, force: true }));

const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;
const isRoot = process.getuid?.() === 0;

describe("writeFileAtomic", () => {
  it("creates a new file with mode 0644", async () => {
    const path = join(dir, "new.conf");

    const r = await writeFileAtomic({ path, content: "hello\n" });

    expect(r).toEqual({ changed: true, created: true, metadataChanged: false });
    expect(await readFile(path, "utf8")).toBe("hello\n");
    expect(await modeOf(path)).toBe(0o644);
  });

  it("does not touch a file whose content is already right: same inode, same mtime", async () => {
    const path = join(dir, "same.conf");
    await writeFile(path, "same\n");
    const before = await stat(path);
    await new Promise((r) => setTimeout(r, 20));

    const r = await writeFileAtomic({ path, content: "same\n", backup: `${path}.bak` });

    expect(r.changed).toBe(false);
    const after = await stat(path);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(await readdir(dir)).toEqual(["same.conf"]);
  });

  it("replaces the file (a new inode) keeping its mode, and keeps the old content as the backup", async () => {
    const path = join(dir, "app.conf");
    await writeFile(path, "old\n");
    await chmod(path, 0o640);
    const before = await stat(path);

    const r = await writeFileAtomic({ path, content: "new\n", backup: `${path}.bootlace-bak` });

    expect(r).toEqual({ changed: true, created: false, metadataChanged: false, backup: `${path}.bootlace-bak` });
    const after = await stat(path);
    expect(after.ino).not.toBe(before.ino);
    expect(after.mode & 0o7777).toBe(0o640);
    expect(await readFile(path, "utf8")).toBe("new\n");
    expect(await readFile(`${path}.bootlace-bak`, "utf8")).toBe("old\n");
    expect(await modeOf(`${path}.bootlace-bak`)).toBe(0o640);
    expect((await readdir(dir)).sort()).toEqual(["app.conf", "app.conf.bootlace-bak"]);
  });

  (isRoot ? it : it.skip)("keeps the owner and group of the file it replaces (root only)", async () => {
    const path = join(dir, "owned.conf");
    await writeFile(path, "old\n");
    await chown(path, 1234, 5678);

    await writeFileAtomic({ path, content: "new\n" });

    const s = await stat(path);
    expect([s.uid, s.gid]).toEqual([1234, 5678]);
  });

  (isRoot ? it : it.skip)("sets a configured mode and owner, also when only they differ (root only)", async () => {
    const path = join(dir, "meta.conf");
    await writeFile(path, "same\n");
    const ino = (await stat(path)).ino;

    const r = await writeFileAtomic({ path, content: "same\n", mode: 0o600, uid: 42, gid: 43 });

    expect(r).toEqual({ changed: false, created: false, metadataChanged: true });
    const s = await stat(path);
    expect([s.ino, s.mode & 0o7777, s.uid, s.gid]).toEqual([ino, 0o600, 42, 43]);
  });

  it("runs the check on the staged file, which already holds the new content and its final mode", async () => {
    const path = join(dir, "checked.conf");
    await writeFile(path, "old\n");
    const seen: { content: string; mode: number; dir: string }[] = [];

    await writeFileAtomic({
      path,
      content: "new\n",
      mode: 0o600,
      check: async (staged) => {
        seen.push({ content: await readFile(staged, "utf8"), mode: await modeOf(staged), dir: join(staged, "..") });
      },
    });

    expect(seen).toEqual([{ content: "new\n", mode: 0o600, dir }]);
  });

  it("a failing check leaves the real file whole, untouched, and no staged file behind", async () => {
    const path = join(dir, "pg_hba.conf");
    await writeFile(path, "old\n");
    const before = await stat(path);

    await expect(
      writeFileAtomic({
        path,
        content: "new\n",
        backup: `${path}.bak`,
        check: () => Promise.reject(new CheckFailedError("no")),
      }),
    ).rejects.toThrow(CheckFailedError);

    const after = await stat(path);
    expect([after.ino, after.mtimeMs]).toEqual([before.ino, before.mtimeMs]);
    expect(await readFile(path, "utf8")).toBe("old\n");
    expect(await readdir(dir)).toEqual(["pg_hba.conf"]);
  });

  it("refuses a symbolic link, a directory and a missing directory", async () => {
    await writeFile(join(dir, "real"), "x");
    await symlink(join(dir, "real"), join(dir, "link"));
    await mkdir(join(dir, "sub"));

    await expect(writeFileAtomic({ path: join(dir, "link"), content: "y" })).rejects.toThrow(
      /is a symbolic link; not written through it/,
    );
    await expect(writeFileAtomic({ path: join(dir, "sub"), content: "y" })).rejects.toThrow(/not a regular file/);
    await expect(writeFileAtomic({ path: join(dir, "none", "file"), content: "y" })).rejects.toMatchObject({
      code: "ENOENT",
      message: expect.stringMatching(
        new RegExp(`^cannot write ${dir}/none/file: no such file or directory`),
      ) as unknown,
    });
    expect(await readFile(join(dir, "real"), "utf8")).toBe("x");
  });

  it("creates the directories when asked (state.json)", async () => {
    const path = join(dir, "var", "lib", "bootlace", "state.json");

    await writeFileAtomic({ path, content: "{}\n", mode: 0o600, createDirs: true });

    expect(await readFile(path, "utf8")).toBe("{}\n");
    expect(await modeOf(path)).toBe(0o600);
  });

  it.each(["EBUSY", "EXDEV"])(
    "refuses, and says why, when rename fails with %s (a bind-mounted file); the file is left as it was",
    async (code) => {
      const path = join(dir, "hosts");
      await writeFile(path, "old\n");
      const bindMounted: WriterFs = {
        rename: (from, to) =>
          to === path
            ? Promise.reject(Object.assign(new Error(`${code}: rename`), { code }))
            : import("node:fs/promises").then((fs) => fs.rename(from, to)),
        link: (a, b) => import("node:fs/promises").then((fs) => fs.link(a, b)),
      };

      const write = writeFileAtomic({ path, content: "new\n" }, bindMounted);

      await expect(write).rejects.toThrow(WriteRefusedError);
      await expect(write).rejects.toThrow(new RegExp(`rename failed with ${code}.*bind-mounted.*torn file`));
      expect(await readFile(path, "utf8")).toBe("old\n");
      expect(await readdir(dir)).toEqual(["hosts"]);
    },
  );

  it("copies the backup where hard links are not allowed", async () => {
    const path = join(dir, "nolinks.conf");
    await writeFile(path, "old\n");
    await chmod(path, 0o600);
    const noLinks: WriterFs = {
      rename: (a, b) => import("node:fs/promises").then((fs) => fs.rename(a, b)),
      link: () => Promise.reject(Object.assign(new Error("EPERM: link"), { code: "EPERM" })),
    };

    await writeFileAtomic({ path, content: "new\n", backup: `${path}.bak` }, noLinks);

    expect(await readFile(`${path}.bak`, "utf8")).toBe("old\n");
    expect(await modeOf(`${path}.bak`)).toBe(0o600);
  });

  it("removes the leftovers of a writer killed before its rename, and only those", async () => {
    const path = join(dir, "hosts");
    await writeFile(path, "old\n");
    await writeFile(join(dir, ".hosts.bootlace-0123456789ab"), "half");
    await writeFile(join(dir, ".hosts.bootlace-bak.bootlace-0123456789ab"), "half");
    await writeFile(join(dir, ".hosts.bootlace-notours"), "keep");

    await writeFileAtomic({ path, content: "new\n", backup: `${path}.bootlace-bak` });

    expect((await readdir(dir)).sort()).toEqual([".hosts.bootlace-notours", "hosts", "hosts.bootlace-bak"]);
  });
});
