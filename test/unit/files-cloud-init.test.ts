// cloud-init's manage_etc_hosts, found where cloud-init reads it; and user/group names from the image.
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { effective, etcHostsAdvice, rendersEtcHosts } from "../../agent/files/cloud-init";
import { idFromDatabase, resolveId } from "../../agent/files/owners";
import { RootFs } from "../../agent/root/fs";

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "bootlace-cloud-"));
});

afterEach(() => rm(root, { recursive: true, force: true }));

async function put(path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

describe("rendersEtcHosts (cloud-init's translate_bool with the template addon)", () => {
  it.each([
    [true, true],
    ["template", true],
    ["True", true],
    ["yes", true],
    [1, true],
    ["localhost", false],
    [false, false],
    ["false", false],
    [undefined, false],
  ])("%j → %s", (value, renders) => {
    expect(rendersEtcHosts(value)).toBe(renders);
  });
});

describe("effective", () => {
  it("takes the value of the last source that sets the key, skipping documents that do not parse", () => {
    const sources = [
      { source: "a", text: "manage_etc_hosts: true\n" },
      { source: "b", text: "other: 1\n" },
      { source: "c", text: "manage_etc_hosts: localhost\n" },
      { source: "d", text: "manage_etc_hosts: [unclosed\n" },
    ];
    expect(effective(sources, (d) => d.manage_etc_hosts)).toEqual({ value: "localhost", source: "c" });
  });
});

describe("etcHostsAdvice", () => {
  it("says nothing when cloud-init does not manage /etc/hosts", async () => {
    expect(await etcHostsAdvice(new RootFs(root))).toBeUndefined();
    await put("/etc/cloud/cloud.cfg", "manage_etc_hosts: localhost\n");
    expect(await etcHostsAdvice(new RootFs(root))).toBeUndefined();
  });

  it("names the setting's source and the distribution's template", async () => {
    await put("/etc/cloud/cloud.cfg", "system_info:\n  distro: amazon\n");
    await put("/etc/cloud/cloud.cfg.d/10-hosts.cfg", "manage_etc_hosts: template\n");
    await put("/etc/cloud/templates/hosts.redhat.tmpl", "x");
    await put("/etc/cloud/templates/hosts.debian.tmpl", "x");

    const advice = await etcHostsAdvice(new RootFs(root));

    expect(advice).toMatch(/manage_etc_hosts is "template" \(\/etc\/cloud\/cloud\.cfg\.d\/10-hosts\.cfg\)/);
    expect(advice).toMatch(/from \/etc\/cloud\/templates\/hosts\.redhat\.tmpl,/);
    expect(advice).toMatch(/or set manage_etc_hosts: localhost/);
  });

  it("reads the instance's #cloud-config user-data as cloud-init saved it, after the system files", async () => {
    await put("/etc/cloud/cloud.cfg.d/99.cfg", "manage_etc_hosts: false\n");
    await put("/var/lib/cloud/instance/cloud-config.txt", "#cloud-config\nmanage_etc_hosts: true\n");

    expect(await etcHostsAdvice(new RootFs(root))).toMatch(/\(\/var\/lib\/cloud\/instance\/cloud-config\.txt\)/);
  });

  it("ignores cloud.cfg.d files that are not *.cfg and user-data that is not cloud-config", async () => {
    await put("/etc/cloud/cloud.cfg.d/README", "manage_etc_hosts: true\n");
    await put("/var/lib/cloud/instance/user-data.txt", "#!/bin/sh\nmanage_etc_hosts: true\n");

    expect(await etcHostsAdvice(new RootFs(root))).toBeUndefined();
  });
});

describe("owners", () => {
  it("reads ids from passwd and group text", () => {
    const passwd = "root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n";
    expect(idFromDatabase(passwd, "www-data")).toBe(33);
    expect(idFromDatabase(passwd, "www")).toBeUndefined();
  });

  it("asks the image under --root first, takes numbers as they are, and says undefined for unknown names", async () => {
    await put("/etc/group", "www-data:x:1501:\n");
    expect(await resolveId(new RootFs(root), "group", "www-data")).toBe(1501);
    expect(await resolveId(new RootFs(root), "user", "4242")).toBe(4242);
    expect(await resolveId(new RootFs(root), "user", "no-such-user-here")).toBeUndefined();
  });

  it("falls back to the running system's own database for a name the image lacks", async () => {
    await put("/etc/passwd", "app:x:1500:1500::/home/app:/bin/sh\n");
    const hostRoot = idFromDatabase(await readFile("/etc/passwd", "utf8"), "root");
    expect(hostRoot).toBe(0);
    expect(await resolveId(new RootFs(root), "user", "root")).toBe(0);
    expect(await resolveId(new RootFs(root), "user", "app")).toBe(1500);
  });

  it("says why an image's database cannot be read instead of taking it as empty", async () => {
    await mkdir(join(root, "etc/group"), { recursive: true });
    await expect(resolveId(new RootFs(root), "group", "www-data")).rejects.toMatchObject({
      code: "EISDIR",
      message: expect.stringContaining(`${root}/etc/group`) as unknown,
    });
  });
});

describe("cloud-init's settings", () => {
  it("says why a cloud-init file cannot be read instead of skipping it", async () => {
    await mkdir(join(root, "etc/cloud/cloud.cfg"), { recursive: true });
    await expect(etcHostsAdvice(new RootFs(root))).rejects.toMatchObject({
      code: "EISDIR",
      message: expect.stringContaining(`${root}/etc/cloud/cloud.cfg`) as unknown,
    });
  });
});
