// The effective configuration: precedence of every source, profile choice, and errors that name source, line and key.
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { ConfigErrors } from "../../agent/core/errors";
import { loadConfig } from "../../agent/config/load";
import type { LoadOptions } from "../../agent/config/load";

const FIXTURES = join(__dirname, "../fixtures");
const BAKED = join(FIXTURES, "config/baked");
const BAKED_FILE = join(BAKED, "etc/bootlace/bootlace.yaml");
const ud = (text: string) => Buffer.from(text);

const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A root folder holding the given files (paths relative to the root). */
function rootWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "bootlace-config-"));
  roots.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

async function errorsOf(o: LoadOptions): Promise<string[]> {
  try {
    await loadConfig(o);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigErrors);
    return (error as ConfigErrors).errors.map((e) => e.message);
  }
  throw new Error("expected loadConfig to throw");
}

describe("sources and precedence", () => {
  test("nothing anywhere: the built-in defaults", async () => {
    const loaded = await loadConfig({ root: rootWith({}) });
    expect(loaded).toEqual({ config: { version: 1 }, sources: [] });
  });

  test("baked file, then conf.d/*.yaml and *.yml in name order; other files are not read", async () => {
    const loaded = await loadConfig({ root: BAKED });
    expect(loaded.sources).toEqual([
      BAKED_FILE,
      join(BAKED, "etc/bootlace/conf.d/05-early.yml"),
      join(BAKED, "etc/bootlace/conf.d/10-dns.yaml"),
      join(BAKED, "etc/bootlace/conf.d/20-watch.yaml"),
    ]);
    expect(loaded.profile).toBeUndefined();
    expect(loaded.config.dns).toEqual({
      wait: "insync", // default
      owner_id: "confd-10", // 10 after 05 after the baked file
      reverse: false, // default
      reap: false, // default
      records: [expect.objectContaining({ zone: "example.internal", ttl: 60, type: "A" })],
    });
    expect(loaded.config.watch).toEqual({ interval: 50 });
    expect(loaded.config.load_balancer).toEqual({
      wait_healthy: 600,
      deregister_on_shutdown: false, // baked beats the default
      target_groups: [{ name: "baked" }],
    });
  });

  test("defaults < baked < profile < user-data < flags, key by key; lists replace whole", async () => {
    const userData = ud("#bootlace\nprofile: web\nload_balancer:\n  wait_healthy: 200\n");
    const base = { root: BAKED, userData };

    const withoutFlags = await loadConfig(base);
    expect(withoutFlags.profile).toBe("web");
    expect(withoutFlags.config.load_balancer).toEqual({
      wait_healthy: 200, // user-data over the profile's 120 over the baked 600
      deregister_on_shutdown: false, // baked, untouched by profile and user-data
      target_groups: [{ name: "web" }], // the profile's list replaced the baked one
    });
    expect(withoutFlags.config.dns?.wait).toBe("none"); // the profile over the default
    expect(withoutFlags.config.dns?.owner_id).toBe("confd-10"); // merged, not replaced, by the profile's dns

    const withFlags = await loadConfig({ ...base, sets: ["load_balancer.wait_healthy=250", "dns.wait=insync"] });
    expect(withFlags.config.load_balancer?.wait_healthy).toBe(250);
    expect(withFlags.config.dns?.wait).toBe("insync");
    expect(withFlags.sources.slice(-3)).toEqual([
      "user-data (#bootlace)",
      "--set load_balancer.wait_healthy=250",
      "--set dns.wait=insync",
    ]);
  });

  test("a user-data key overrides the baked profile's key", async () => {
    const loaded = await loadConfig({ root: BAKED, userData: ud("#bootlace\nprofile: web\ndns:\n  wait: insync\n") });
    expect(loaded.config.dns?.wait).toBe("insync");
  });

  test("shell script sets sit above user-data documents and under flags", async () => {
    const script = "#!/bin/sh\nBOOTLACE_PROFILE=web\nBOOTLACE_SET_load_balancer__wait_healthy=220\n";
    const shellOnly = await loadConfig({ root: BAKED, userData: ud(script) });
    expect(shellOnly.config.load_balancer?.wait_healthy).toBe(220);
    expect(shellOnly.profile).toBe("web");
    const flagged = await loadConfig({ root: BAKED, userData: ud(script), sets: ["load_balancer.wait_healthy=250"] });
    expect(flagged.config.load_balancer?.wait_healthy).toBe(250);
  });

  test("a --set index edits one list item, keeping the rest of it", async () => {
    const loaded = await loadConfig({ root: BAKED, sets: ["dns.records.0.ttl=30", "dns.records.0.takeover=true"] });
    expect(loaded.config.dns?.records).toEqual([
      expect.objectContaining({ zone: "example.internal", ttl: 30, takeover: true }),
    ]);
  });

  test("BOOTLACE_SET_ keeps the case of tag keys and reads YAML scalars", async () => {
    const script =
      "#!/bin/sh\nBOOTLACE_SET_elastic_ip__pool__tags__Pool=root\nBOOTLACE_SET_elastic_ip__allow_reassociation=true\n";
    const loaded = await loadConfig({ root: rootWith({}), userData: ud(script) });
    expect(loaded.config.elastic_ip).toEqual({ pool: { tags: { Pool: "root" } }, allow_reassociation: true });
  });

  test("null removes what an earlier source set", async () => {
    const loaded = await loadConfig({ root: BAKED, userData: ud("#bootlace\nload_balancer: null\n") });
    expect(loaded.config.load_balancer).toBeUndefined();
  });

  test("--config replaces the baked files and is relative to the working directory, not root", async () => {
    const configFile = relative(process.cwd(), join(FIXTURES, "config/override.yaml"));
    const loaded = await loadConfig({ root: BAKED, configFile });
    expect(loaded.config).toEqual({ version: 1, watch: { interval: 999 } });
    expect(loaded.sources).toEqual([join(FIXTURES, "config/override.yaml")]);
  });

  test("a conf.d that cannot be listed is an error", async () => {
    const root = rootWith({ "etc/bootlace/conf.d": "a file, not a folder" });
    expect(await errorsOf({ root })).toEqual([
      expect.stringMatching(new RegExp(`^${join(root, "etc/bootlace/conf.d")}: cannot list: not a directory`)),
    ]);
  });

  test("a missing --config file is an error; missing baked files are not", async () => {
    expect(await errorsOf({ root: BAKED, configFile: "/nonexistent/bootlace.yaml" })).toEqual([
      "/nonexistent/bootlace.yaml: no such file (given with --config)",
    ]);
  });

  test("a baked file that is there but cannot be read is an error naming it, never taken for absent", async () => {
    const root = rootWith({ "etc/bootlace/conf.d/20-ok.yaml": "watch: {interval: 77}\n" });
    mkdirSync(join(root, "etc/bootlace/bootlace.yaml")); // a folder where the file belongs: EISDIR, even for root
    mkdirSync(join(root, "etc/bootlace/conf.d/10-dir.yaml"));
    expect(await errorsOf({ root })).toEqual([
      `${join(root, "etc/bootlace/bootlace.yaml")}: cannot read: it is a directory (EISDIR)`,
      `${join(root, "etc/bootlace/conf.d/10-dir.yaml")}: cannot read: it is a directory (EISDIR)`,
    ]);
  });

  // Root reads a file whatever its mode, so this one can only run as another user.
  (process.getuid?.() === 0 ? test.skip : test)("a baked file without read permission is an error", async () => {
    const root = rootWith({ "etc/bootlace/bootlace.yaml": "watch: {interval: 77}\n" });
    chmodSync(join(root, "etc/bootlace/bootlace.yaml"), 0o000);
    expect(await errorsOf({ root })).toEqual([
      expect.stringMatching(new RegExp(`^${join(root, "etc/bootlace/bootlace.yaml")}: cannot read: EACCES`)),
    ]);
  });

  test("MIME user-data end to end: make-mime output, gzipped", async () => {
    const raw = gzipSync(readFileSync(join(FIXTURES, "userdata/mime-make-mime.txt")));
    const loaded = await loadConfig({ root: BAKED, userData: raw });
    expect(loaded.profile).toBe("web");
    expect(loaded.config.elastic_ip).toEqual({ pool: { tags: { Pool: "root" } }, allow_reassociation: false });
    expect(loaded.config.dns?.records).toEqual([expect.objectContaining({ ttl: 45 })]); // the script's set wins
  });
});

describe("profiles", () => {
  const rootDomain = { profile: "root-domain", eip: { pool: { tags: { Pool: "root" } }, allow_reassociation: false } };

  test.each<[string, Partial<LoadOptions>]>([
    ["a baked conf.d file", {}],
    ["#bootlace user-data", { userData: ud("#bootlace\nprofile: root-domain\n") }],
    ["#cloud-config user-data", { userData: ud("#cloud-config\nbootlace:\n  profile: root-domain\n") }],
    ["a shell script", { userData: ud("#!/bin/sh\nexport BOOTLACE_PROFILE='root-domain'\n") }],
    ["--set profile=", { sets: ["profile=root-domain"] }],
    ["--profile", { profile: "root-domain" }],
  ])("chosen by %s", async (from, o) => {
    const extra =
      from === "a baked conf.d file" ? { "etc/bootlace/conf.d/50-profile.yaml": "profile: root-domain\n" } : {};
    const root = rootWith({ "etc/bootlace/bootlace.yaml": readFileSync(BAKED_FILE, "utf8"), ...extra });
    const loaded = await loadConfig({ root, ...o });
    expect([loaded.profile, loaded.config.elastic_ip]).toEqual([rootDomain.profile, rootDomain.eip]);
  });

  test("later sources choose: baked < user-data < --profile", async () => {
    const root = rootWith({ "etc/bootlace/bootlace.yaml": readFileSync(BAKED_FILE, "utf8") + "profile: web\n" });
    expect((await loadConfig({ root })).profile).toBe("web");
    const userData = ud("#bootlace\nprofile: root-domain\n");
    expect((await loadConfig({ root, userData })).profile).toBe("root-domain");
    expect((await loadConfig({ root, userData, profile: "web" })).profile).toBe("web");
  });

  test("profiles from every source are merged; the profile sits under user-data's top level", async () => {
    const userData = ud(
      "#bootlace\nprofile: web\nprofiles:\n  web:\n    watch: {interval: 5}\n  extra: {}\ndns:\n  owner_id: mine\n",
    );
    const loaded = await loadConfig({ root: BAKED, userData });
    expect(loaded.config.watch).toEqual({ interval: 5 }); // user-data's addition to the web profile, over baked 50
    expect(loaded.config.load_balancer?.wait_healthy).toBe(120); // the baked part of the web profile
    expect(loaded.config.dns?.owner_id).toBe("mine");
    expect(Object.keys(loaded.config.profiles ?? {})).toEqual(["web", "root-domain", "extra"]);
  });

  test("an empty profile (`web:` with nothing under it) is a profile, not a removal", async () => {
    const root = rootWith({ "etc/bootlace/bootlace.yaml": "profile: web\nprofiles:\n  web:\n" });
    expect(await loadConfig({ root })).toEqual({
      config: { version: 1, profile: "web", profiles: { web: {} } },
      sources: [join(root, "etc/bootlace/bootlace.yaml")],
      profile: "web",
    });
  });

  test("an unknown profile names where the name came from and the known profiles", async () => {
    expect(await errorsOf({ root: BAKED, userData: ud("#bootlace\nprofile: db\n") })).toEqual([
      'user-data (#bootlace), line 2: profile: no profile named "db" (known: web, root-domain)',
    ]);
    expect(await errorsOf({ root: BAKED, profile: "db" })).toEqual([
      '--profile db: profile: no profile named "db" (known: web, root-domain)',
    ]);
    expect(await errorsOf({ root: rootWith({}), userData: ud("#!/bin/sh\n\nBOOTLACE_PROFILE=db\n") })).toEqual([
      'user-data (shell script), line 3: profile: no profile named "db" (known: none defined)',
    ]);
  });
});

describe("errors name the source, the line and the key path", () => {
  test("broken YAML in a conf.d file, reported with mistakes in user-data", async () => {
    const root = rootWith({ "etc/bootlace/conf.d/10-x.yaml": "dns:\n  wait: none\n records: []\n" });
    expect(await errorsOf({ root, userData: ud("#bootlace\ndns: [\n") })).toEqual([
      `${join(root, "etc/bootlace/conf.d/10-x.yaml")}, line 3: YAML: All mapping items must start at the same column`,
      expect.stringMatching(/^user-data \(#bootlace\), line \d: YAML: /),
    ]);
  });

  test("unknown keys, top-level and nested, at the key's own line", async () => {
    const userData = ud("#bootlace\nwatch:\n  intervall: 5\ndsn:\n  wait: none\n");
    expect(await errorsOf({ root: rootWith({}), userData })).toEqual([
      "user-data (#bootlace), line 3: watch.intervall: unknown key (expected one of: interval, notice_interval)",
      expect.stringMatching(/^user-data \(#bootlace\), line 4: dsn: unknown key \(expected one of: version, .*dns/),
    ]);
  });

  test("a bad address in MIME part 2, line 7", async () => {
    const userData = readFileSync(join(FIXTURES, "userdata/mime-bad-address.txt"));
    expect(await errorsOf({ root: rootWith({}), userData })).toEqual([
      'user-data part 2 (text/x-bootlace, "bootlace.yaml"), line 7: dns.records.0.value: expected private_ipv4, public_ipv4, elastic_ip or an IPv4 address, got "10.0.0.300"',
    ]);
  });

  test("a bad type, and a missing required field at its item's line, all in one report", async () => {
    const userData = ud(
      "#bootlace\nwatch:\n  interval: often\ndns:\n  records:\n    - zone: example.internal\n      ttl: 30\n",
    );
    expect(await errorsOf({ root: rootWith({}), userData })).toEqual([
      'user-data (#bootlace), line 3: watch.interval: expected number, got "often"',
      "user-data (#bootlace), line 6: dns.records.0.name: required (expected string)",
    ]);
  });

  test("a mistake inside a baked profile points into the baked file, once", async () => {
    const root = rootWith({
      "etc/bootlace/bootlace.yaml": "profile: p\nprofiles:\n  p:\n    watch:\n      interval: 1\n",
    });
    expect(await errorsOf({ root })).toEqual([
      `${join(root, "etc/bootlace/bootlace.yaml")}, line 5: profiles.p.watch.interval: expected number to be >=5, got 1`,
    ]);
  });

  test("the examples in docs/configuration.md are what bootlace says", async () => {
    const root = rootWith({ "etc/bootlace/conf.d/10-web.yaml": "dns:\n  wait: none\n  recrods: []\n" });
    const messages = [
      ...(await errorsOf({ root })),
      ...(await errorsOf({ root: rootWith({}), sets: ["watch.interval=1"] })),
    ];
    const docs = readFileSync(join(__dirname, "../../docs/configuration.md"), "utf8");
    expect(messages).toEqual([
      `${join(root, "etc/bootlace/conf.d/10-web.yaml")}, line 3: dns.recrods: unknown key (expected one of: wait, owner_id, reverse, reap, records)`,
      "--set watch.interval=1: watch.interval: expected number to be >=5, got 1",
    ]);
    expect(docs).toContain(messages[0]?.replace(root, ""));
    expect(docs).toContain(messages[1]);
  });

  test("a value set by a shell script is blamed on the script's line", async () => {
    const userData = ud("#!/bin/sh\nBOOTLACE_SET_watch__interval=often\n");
    expect(await errorsOf({ root: rootWith({}), userData })).toEqual([
      'user-data (shell script), line 2: watch.interval: expected number, got "often"',
    ]);
  });

  test("a rule across sources is blamed on the later one", async () => {
    const root = rootWith({ "etc/bootlace/bootlace.yaml": "elastic_ip:\n  allocation_id: eipalloc-0abc1234\n" });
    const userData = ud("#bootlace\n\nelastic_ip:\n  pool: {tags: {Pool: root}}\n");
    expect(await errorsOf({ root, userData })).toEqual([
      "user-data (#bootlace), line 3: elastic_ip: set exactly one of allocation_id or pool",
    ]);
  });

  test("credentials in user-data refuse the whole configuration", async () => {
    const userData = ud("#bootlace\nwatch: {interval: 60}\n# aws_secret_access_key = abc\n");
    expect(await errorsOf({ root: BAKED, userData })).toEqual([
      expect.stringMatching(/^user-data \(#bootlace\), line 3: refusing user-data that carries AWS credentials: /),
    ]);
  });

  test.each([
    [
      "dns.records.5.ttl=1",
      "--set dns.records.5.ttl=1: dns.records.5.ttl: index 5 is past the end of the list (1 item(s))",
    ],
    ["dns.records.x.ttl=1", '--set dns.records.x.ttl=1: dns.records.x.ttl: "x" is not an index: this is a list'],
    ["dns.owner_id.x=1", '--set dns.owner_id.x=1: dns.owner_id.x: cannot set "x" inside a string'],
    ["dns..wait=none", "--set dns..wait=none: dns..wait: empty key in path"],
    ["dns.wait", "--set dns.wait: expected --set path=value"],
    ["dns.nope=1", "--set dns.nope=1: dns.nope: unknown key (expected one of: wait, owner_id, reverse, reap, records)"],
  ])("--set %s", async (arg, message) => {
    expect(await errorsOf({ root: BAKED, sets: [arg] })).toEqual([message]);
  });
});
