// RootFs, the door to the filesystem under --root, on real files: paths and links cannot lead out of the root, and
// only "not found" reads as absence.
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ConfigError } from "../../agent/core/errors";
import { RootFs } from "../../agent/root/fs";

let base: string;
let root: string;
let fs: RootFs;

beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), "bootlace-rootfs-"));
  root = join(base, "root");
  await mkdir(join(root, "etc"), { recursive: true });
  await writeFile(join(base, "secret"), "outside\n");
  fs = new RootFs(root);
});

afterEach(() => rm(base, { recursive: true, force: true }));

async function put(path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

describe("paths", () => {
  it("maps the instance's absolute paths under the root", () => {
    expect(fs.path("/etc/hosts")).toBe(join(root, "etc/hosts"));
    expect(fs.path("/")).toBe(root);
    expect(fs.inside(join(root, "etc/hosts"))).toBe("/etc/hosts");
  });

  it("refuses a relative path and one with a '..' part, naming the key", () => {
    expect(() => fs.path("etc/hosts", "files.0.path")).toThrow(
      new ConfigError('"etc/hosts" is not an absolute path', undefined, "files.0.path"),
    );
    for (const escape of ["/../secret", "/etc/../../secret", "/.."]) {
      expect(() => fs.path(escape)).toThrow(ConfigError);
      expect(() => fs.path(escape)).toThrow(/has a "\.\." part, which could leave the root/);
    }
  });

  it("refuses the same escapes when reading and writing, touching nothing outside", async () => {
    await expect(fs.readText("/../secret")).rejects.toThrow(ConfigError);
    await expect(fs.write({ path: "/../secret", content: "pwned\n" })).rejects.toThrow(ConfigError);
    await expect(fs.resolveFile("/../../secret", { follow: true })).rejects.toThrow(ConfigError);
    expect(await readFile(join(base, "secret"), "utf8")).toBe("outside\n");
  });
});

describe("symbolic links", () => {
  it("takes an absolute link target under the root, as the image sees it", async () => {
    await put("/etc/hosts.real", "real\n");
    await symlink("/etc/hosts.real", join(root, "etc/hosts"));

    const file = await fs.resolveFile("/etc/hosts", { follow: true });

    expect(file).toMatchObject({ real: join(root, "etc/hosts.real"), path: "/etc/hosts.real" });
    expect(file.stat?.isFile()).toBe(true);
    expect(await fs.readText("/etc/hosts")).toBe("real\n");
  });

  it("follows links in the directories on the way, inside the root", async () => {
    await put("/data/app/app.conf", "conf\n");
    await symlink("/data/app", join(root, "etc/app"));
    await symlink("../data", join(root, "etc/data"));

    expect(await fs.readText("/etc/app/app.conf")).toBe("conf\n");
    expect(await fs.readText("/etc/data/app/app.conf")).toBe("conf\n");
    const file = await fs.resolveFile("/etc/app/app.conf", { follow: false });
    expect(file.path).toBe("/data/app/app.conf");
  });

  it("refuses a link whose target climbs out of the root, on the file or on a directory on the way", async () => {
    await symlink("../../secret", join(root, "etc/hosts"));
    await symlink("../..", join(root, "etc/up"));

    await expect(fs.resolveFile("/etc/hosts", { follow: true, at: "files.0.path" })).rejects.toThrow(
      new ConfigError(
        `/etc/hosts: a symbolic link on the way leads out of the root ${root}`,
        undefined,
        "files.0.path",
      ),
    );
    await expect(fs.readText("/etc/hosts")).rejects.toThrow(/leads out of the root/);
    await expect(fs.readText("/etc/up/secret")).rejects.toThrow(/leads out of the root/);
    await expect(fs.write({ path: "/etc/up/secret", content: "pwned\n" })).rejects.toThrow(/leads out of the root/);
    expect(await readFile(join(base, "secret"), "utf8")).toBe("outside\n");
  });

  it("refuses a link it is not to follow, a directory, and a loop", async () => {
    await put("/etc/real", "x\n");
    await symlink("/etc/real", join(root, "etc/link"));
    await symlink("/etc/loop-b", join(root, "etc/loop-a"));
    await symlink("/etc/loop-a", join(root, "etc/loop-b"));

    await expect(fs.resolveFile("/etc/link", { follow: false })).rejects.toThrow(
      /is a symbolic link; bootlace does not write through links unless follow_symlinks: true/,
    );
    await expect(fs.resolveFile("/etc", { follow: true })).rejects.toThrow(/\/etc is a directory, not a file/);
    await expect(fs.resolveFile("/etc/loop-a", { follow: true })).rejects.toThrow(/too many levels/);
  });

  it("follows a dangling link to where its file would be", async () => {
    await symlink("/etc/new.conf", join(root, "etc/link"));
    const file = await fs.resolveFile("/etc/link", { follow: true });
    expect(file).toEqual({ real: join(root, "etc/new.conf"), path: "/etc/new.conf" });
  });

  it("under / a link's '..' cannot climb higher than /, as the kernel has it", async () => {
    const deep = "../".repeat(40);
    await symlink(`${deep}etc/passwd`, join(base, "passwd-link"));
    expect(await new RootFs("/").readText(join(base, "passwd-link"))).toBe(await readFile("/etc/passwd", "utf8"));
  });
});

describe("absence and errors", () => {
  it("reads a missing file, a missing directory and a file under a file as absent", async () => {
    await put("/etc/plain", "x\n");
    expect(await fs.readText("/etc/none")).toBeUndefined();
    expect(await fs.readBytes("/none/at/all")).toBeUndefined();
    expect(await fs.readDir("/var/none")).toBeUndefined();
    expect(await fs.stat("/etc/plain/below")).toBeUndefined();
    expect(await fs.readText("/etc/plain/below")).toBeUndefined();
  });

  it("throws any other failure with its code and the file named", async () => {
    await mkdir(join(root, "etc/hosts"));
    await put("/etc/file", "x\n");

    await expect(fs.readText("/etc/hosts")).rejects.toMatchObject({
      code: "EISDIR",
      message: `cannot read the file ${join(root, "etc/hosts")}: it is a directory`,
    });
    await expect(fs.readDir("/etc/file")).rejects.toMatchObject({
      code: "ENOTDIR",
      message: expect.stringContaining(join(root, "etc/file")) as unknown,
    });
  });
});

describe("writing", () => {
  it("writes and keeps the backup through the writer, at paths mapped under the root", async () => {
    await put("/etc/app.conf", "old\n");
    const result = await fs.write({ path: "/etc/app.conf", content: "new\n", backup: "/etc/app.conf.bak" });
    expect(result).toMatchObject({ changed: true, backup: join(root, "etc/app.conf.bak") });
    expect(await readFile(join(root, "etc/app.conf"), "utf8")).toBe("new\n");
    expect(await readFile(join(root, "etc/app.conf.bak"), "utf8")).toBe("old\n");
  });

  it("removes a killed writer's leftovers when asked, though nothing is written", async () => {
    await put("/etc/app.conf", "same\n");
    await put("/etc/.app.conf.bootlace-0123456789ab", "half");
    await put("/etc/.app.conf.bak.bootlace-ba9876543210", "half");
    await put("/etc/.other.bootlace-0123456789ab", "not this file's");

    await fs.removeLeftovers("/etc/app.conf", "/etc/app.conf.bak");

    expect((await readdir(join(root, "etc"))).sort()).toEqual([".other.bootlace-0123456789ab", "app.conf"]);
  });
});
