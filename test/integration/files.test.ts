// Peers and files end to end: the real bundle, IMDS from the emulator, peers from moto, real files under a temporary
// root. Each test has a VPC of its own, so its peers are exactly the instances it launched.
import { chmod, chown, lstat, mkdir, readFile, readdir, readlink, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ImdsEmulator, ImdsInstance } from "../harness/imds-emulator";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let nextCidr = 60;

beforeAll(async () => {
  world = await startWorld();
});

afterAll(() => world?.close());

interface Booted {
  instance: ImdsInstance;
  imds: ImdsEmulator;
  root: string;
}

/** A VPC of its own with these peers in it (launched in order, so their addresses ascend). */
async function neighbourhood(peers: Record<string, string>[]): Promise<{ vpcId: string; peers: ImdsInstance[] }> {
  const { vpcId } = await world.createVpc(`10.${nextCidr++}.0.0/16`);
  const launched: ImdsInstance[] = [];
  for (const tags of peers) launched.push(await world.launchInstance({ vpcId, tags }));
  return { vpcId, peers: launched };
}

/** This instance (Role=web, Env=test) in the VPC, with the configuration as #bootlace user-data (JSON is YAML). */
async function boot(
  vpcId: string,
  config: unknown,
  o: { tagsEnabled?: boolean; tags?: Record<string, string> } = {},
): Promise<Booted> {
  const tags = { Name: "web-1", Role: "web", Env: "test", ...o.tags };
  const instance = await world.launchInstance({ vpcId, tags });
  const imds = await world.startImds(
    { ...instance, userData: `#bootlace\n${JSON.stringify(config)}\n` },
    { tagsEnabled: o.tagsEnabled ?? true },
  );
  return { instance, imds, root: await makeRoot() };
}

const run = (b: Booted, command = "run", extra: string[] = []) =>
  runBootlace([command, "--json", ...extra], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });

async function put(root: string, path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

const read = (root: string, path: string) => readFile(join(root, path), "utf8");

const block = (lines: string[], name = "main", comment = "#") =>
  [
    `${comment} BEGIN bootlace block ${name} (managed by bootlace: edits inside are overwritten)`,
    ...lines,
    `${comment} END bootlace block ${name}`,
  ]
    .map((l) => `${l}\n`)
    .join("");

const HOSTS =
  "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n\n# kept as it is\n10.9.9.9 legacy.internal\n";
const CONFIG_PHP = "<?php\ndefine('DB_HOST', 'localhost');\ndefine('DB_NAME', 'app');\n";
const PG_HBA =
  "# TYPE  DATABASE USER ADDRESS METHOD\nlocal all postgres peer\nhost all all 127.0.0.1/32 scram-sha-256\n";

const dbAndApps = [
  { Name: "db-1", Role: "db", Env: "test" },
  { Name: "app-1", Role: "app", Env: "test" },
  { Name: "app-2", Role: "app", Env: "test" },
  // Same role, other environment: a test app must never find the production database.
  { Name: "db-prod", Role: "db", Env: "prod" },
];

const peersConfig = {
  db: { tags: { Role: "db", Env: "{{tags.Env}}" }, min: 1, timeout: 30 },
  app: { tags: { Role: "app", Env: "{{tags.Env}}" } },
};

const threeFiles = {
  peers: peersConfig,
  files: [
    { path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db.internal {{name}}\n{{/peers.db}}" },
    {
      path: "/var/www/app/Config.php",
      replace: [{ match: "define\\('DB_HOST', '[^']*'\\)", with: "define('DB_HOST', '{{peers.db.0.ip}}')" }],
      on_change: "echo php >> reloads.log",
    },
    {
      path: "/etc/postgresql/15/main/pg_hba.conf",
      block: "{{#peers.app}}host all all {{ip}}/32 scram-sha-256\n{{/peers.app}}",
      position: "top",
      check: "test -s {{staged}}",
      on_change: "echo postgres >> reloads.log",
    },
  ],
};

async function seedThreeFiles(root: string): Promise<void> {
  await put(root, "/etc/hosts", HOSTS);
  await put(root, "/var/www/app/Config.php", CONFIG_PHP);
  await put(root, "/etc/postgresql/15/main/pg_hba.conf", PG_HBA);
}

const identity = async (root: string, path: string) => {
  const s = await stat(join(root, path));
  return { ino: s.ino, mtimeMs: s.mtimeMs };
};

describe("bootlace run with peers and files", () => {
  it("writes a hosts block, a Config.php line and a pg_hba.conf block at the top; the rest is kept byte for byte", async () => {
    const { vpcId, peers } = await neighbourhood(dbAndApps);
    const [db, app1, app2] = peers;
    const b = await boot(vpcId, threeFiles);
    await seedThreeFiles(b.root);

    const result = await run(b);

    expect(result.stderr).not.toMatch(/error/i);
    expect(result.code).toBe(0);
    expect(await read(b.root, "/etc/hosts")).toBe(HOSTS + block([`${db!.privateIpv4} db.internal db-1`]));
    expect(await read(b.root, "/var/www/app/Config.php")).toBe(
      CONFIG_PHP.replace("'localhost'", `'${db!.privateIpv4}'`),
    );
    expect(await read(b.root, "/etc/postgresql/15/main/pg_hba.conf")).toBe(
      block([app1, app2].map((a) => `host all all ${a!.privateIpv4}/32 scram-sha-256`)) + PG_HBA,
    );
    // The previous content is kept beside each file.
    expect(await read(b.root, "/etc/hosts.bootlace-bak")).toBe(HOSTS);
    // One reload per distinct command, after the files were written.
    expect((await read(b.root, "/reloads.log")).split("\n").filter(Boolean).sort()).toEqual(["php", "postgres"]);
  });

  it("a second run on an unchanged world rewrites nothing: same inode and mtime, no reload", async () => {
    const { vpcId } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, threeFiles);
    await seedThreeFiles(b.root);
    expect((await run(b)).code).toBe(0);
    const paths = ["/etc/hosts", "/var/www/app/Config.php", "/etc/postgresql/15/main/pg_hba.conf"];
    const before = await Promise.all(paths.map((p) => identity(b.root, p)));

    const plan = await run(b, "plan");
    const again = await run(b);

    expect(plan.json).toMatchObject({ changes: 0 });
    expect(again.code).toBe(0);
    expect(again.json).toMatchObject({ changes: 0 });
    expect(await Promise.all(paths.map((p) => identity(b.root, p)))).toEqual(before);
    expect((await read(b.root, "/reloads.log")).split("\n").filter(Boolean)).toHaveLength(2);
  });

  it("plan shows what run would write and writes nothing", async () => {
    const { vpcId } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, threeFiles);
    await seedThreeFiles(b.root);

    const plan = await run(b, "plan");

    expect(plan.code).toBe(0);
    const json = plan.json as {
      changes: number;
      actions: { name: string; changes: { kind: string; target: string }[] }[];
    };
    expect(json.changes).toBe(3);
    expect(json.actions.find((a) => a.name === "files")?.changes.map((c) => `${c.kind} ${c.target}`)).toEqual([
      "update /etc/hosts",
      "update /var/www/app/Config.php",
      "update /etc/postgresql/15/main/pg_hba.conf",
    ]);
    expect(await read(b.root, "/etc/hosts")).toBe(HOSTS);
    await expect(readdir(join(b.root, "var/lib/bootlace"))).resolves.toEqual([]);
  });

  it("renders a whole-file template with the mode, owner and group configured, by name from the image", async () => {
    const { vpcId, peers } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, {
      peers: peersConfig,
      files: [
        {
          path: "/etc/app/app.env",
          template: "/etc/bootlace/templates/app.env.mustache",
          mode: "0640",
          owner: "appuser",
          group: "www-data",
        },
      ],
    });
    await put(b.root, "/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nappuser:x:1500:1500::/home/app:/bin/sh\n");
    await put(b.root, "/etc/group", "root:x:0:\nwww-data:x:1501:\n");
    await put(
      b.root,
      "/etc/bootlace/templates/app.env.mustache",
      "INSTANCE={{instance.id}}\nENV={{tags.Env}}\nDB={{#peers.db}}{{ip}}{{/peers.db}}\nAPPS={{#peers.app}}{{ip}},{{/peers.app}}\n",
    );
    await mkdir(join(b.root, "etc/app"));

    const result = await run(b);

    expect(result.code).toBe(0);
    expect(await read(b.root, "/etc/app/app.env")).toBe(
      `INSTANCE=${b.instance.instanceId}\nENV=test\nDB=${peers[0]!.privateIpv4}\n` +
        `APPS=${peers[1]!.privateIpv4},${peers[2]!.privateIpv4},\n`,
    );
    const s = await stat(join(b.root, "etc/app/app.env"));
    expect({ mode: s.mode & 0o7777, uid: s.uid, gid: s.gid }).toEqual({ mode: 0o640, uid: 1500, gid: 1501 });
  });

  it("keeps an existing file's mode and owner when none is configured", async () => {
    const { vpcId } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, threeFiles);
    await seedThreeFiles(b.root);
    const hosts = join(b.root, "etc/hosts");
    await chown(hosts, 1234, 5678);
    await chmod(hosts, 0o604);
    const before = await stat(hosts);

    expect((await run(b)).code).toBe(0);

    const after = await stat(hosts);
    expect(after.ino).not.toBe(before.ino); // replaced, not edited in place
    expect({ mode: after.mode & 0o7777, uid: after.uid, gid: after.gid }).toEqual({
      mode: 0o604,
      uid: 1234,
      gid: 5678,
    });
  });

  it("a failing check leaves the real file whole and untouched, reports it, and still writes the other files", async () => {
    const { vpcId, peers } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, {
      peers: peersConfig,
      files: [
        { path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db.internal\n{{/peers.db}}" },
        {
          path: "/etc/postgresql/15/main/pg_hba.conf",
          block: "{{#peers.app}}host all all {{ip}}/32 scram-sha-256\n{{/peers.app}}",
          check: "grep -q 'this line is not there' {{staged}}",
          on_change: "echo postgres >> reloads.log",
        },
      ],
    });
    await seedThreeFiles(b.root);
    const before = await identity(b.root, "/etc/postgresql/15/main/pg_hba.conf");

    const result = await run(b);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/files\.1 \/etc\/postgresql\/15\/main\/pg_hba\.conf: check refused the new content/);
    expect(await read(b.root, "/etc/postgresql/15/main/pg_hba.conf")).toBe(PG_HBA);
    expect(await identity(b.root, "/etc/postgresql/15/main/pg_hba.conf")).toEqual(before);
    expect(await readdir(join(b.root, "etc/postgresql/15/main"))).toEqual(["pg_hba.conf"]);
    expect(await read(b.root, "/etc/hosts")).toContain(`${peers[0]!.privateIpv4} db.internal`);
    await expect(readFile(join(b.root, "reloads.log"))).rejects.toThrow(/ENOENT/);
  });

  it("runs a reload named by several changed files once, and reports a failing reload", async () => {
    const { vpcId } = await neighbourhood(dbAndApps);
    const entry = (path: string, on_change: string) => ({
      path,
      block: "{{#peers.app}}{{ip}} app.internal\n{{/peers.app}}",
      on_change,
    });
    const b = await boot(vpcId, {
      peers: peersConfig,
      files: [
        entry("/etc/a.conf", "echo reload >> reloads.log"),
        entry("/etc/b.conf", "echo reload >> reloads.log"),
        entry("/etc/c.conf", "echo reload >> reloads.log"),
        entry("/etc/d.conf", "echo broken; exit 3"),
      ],
    });

    const result = await run(b);

    expect(result.code).toBe(1);
    expect(await read(b.root, "/reloads.log")).toBe("reload\n");
    expect(result.stderr).toMatch(/on_change "echo broken; exit 3" failed: exit 3: broken/);
    for (const f of ["a", "b", "c", "d"]) expect(await read(b.root, `/etc/${f}.conf`)).toContain("app.internal");
  });

  it("removes a block from its file when the block is removed from the configuration", async () => {
    const { vpcId, peers } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, threeFiles);
    await seedThreeFiles(b.root);
    expect((await run(b)).code).toBe(0);
    expect(await read(b.root, "/etc/hosts")).toContain(peers[0]!.privateIpv4);

    // The hosts entry is dropped; pg_hba's block is renamed (the old one goes, the new one comes).
    const [, php, pg] = threeFiles.files;
    b.imds.update({
      userData: `#bootlace\n${JSON.stringify({ peers: peersConfig, files: [php, { ...pg, name: "apps" }] })}\n`,
    });
    const result = await run(b);

    expect(result.code).toBe(0);
    expect(await read(b.root, "/etc/hosts")).toBe(HOSTS);
    const hba = await read(b.root, "/etc/postgresql/15/main/pg_hba.conf");
    expect(hba).not.toContain("block main");
    expect(hba).toBe(
      block(
        [peers[1]!, peers[2]!].map((a) => `host all all ${a.privateIpv4}/32 scram-sha-256`),
        "apps",
      ) + PG_HBA,
    );
  });

  it("leaves a peer with an unsafe tag out of the file, naming the instance and the tag, and writes the others", async () => {
    const { vpcId, peers } = await neighbourhood([
      { Name: "cache-1", Role: "cache", Env: "test", Zone: "a" },
      { Name: "cache-2\n10.6.6.6 bank.example.com", Role: "cache", Env: "test", Zone: "b" },
      { Name: "cache-3", Role: "cache", Env: "test", Zone: "blue#red" },
      { Name: "cache-4", Role: "cache", Env: "test", Zone: "c" },
    ]);
    const b = await boot(vpcId, {
      peers: { cache: { tags: { Role: "cache", Env: "{{tags.Env}}" } } },
      files: [
        { path: "/etc/hosts", block: "{{#peers.cache}}{{ip}} {{name}} # zone {{tags.Zone}}\n{{/peers.cache}}" },
        // The same peers in a file that uses only their addresses: nobody is left out of it.
        { path: "/etc/cache.list", block: "{{#peers.cache}}{{ip}}\n{{/peers.cache}}" },
      ],
    });
    await put(b.root, "/etc/hosts", HOSTS);

    const result = await run(b);

    expect(result.code).toBe(0);
    const hosts = await read(b.root, "/etc/hosts");
    expect(hosts).toBe(
      HOSTS + block([`${peers[0]!.privateIpv4} cache-1 # zone a`, `${peers[3]!.privateIpv4} cache-4 # zone c`]),
    );
    expect(hosts).not.toContain("bank.example.com");
    expect(result.stderr).toContain(`left out peer ${peers[1]!.instanceId} (${peers[1]!.privateIpv4}) of peers.cache`);
    expect(result.stderr).toMatch(/tag Name "cache-2\\n10\.6\.6\.6 bank\.example\.com" is not a DNS name/);
    // Every line of the log is one of bootlace's: no value started a line of its own.
    for (const line of result.stderr.split(/\r\n|[\n\r\u0085\u2028\u2029]/u).filter(Boolean)) {
      expect(line).toMatch(/^bootlace: /);
    }
    expect(result.stderr).toMatch(new RegExp(`left out peer ${peers[2]!.instanceId} .*tag Zone "blue#red" has a '#'`));
    expect(await read(b.root, "/etc/cache.list")).toBe(block(peers.map((p) => p.privateIpv4)));
  });

  it("waits for a peer set to reach its min, then writes the file", async () => {
    const { vpcId } = await neighbourhood([]);
    const b = await boot(vpcId, {
      peers: { db: { tags: { Role: "db" }, min: 1, timeout: 60 } },
      files: [{ path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db.internal\n{{/peers.db}}" }],
    });
    await put(b.root, "/etc/hosts", HOSTS);

    const running = run(b);
    await new Promise((r) => setTimeout(r, 2500));
    const db = await world.launchInstance({ vpcId, tags: { Name: "db-late", Role: "db" } });
    const result = await running;

    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/waiting up to 60 s for peers\.db to have 1 \(now 0\)/);
    expect(await read(b.root, "/etc/hosts")).toBe(HOSTS + block([`${db.privateIpv4} db.internal`]));
  });

  it("past a peer set's timeout, leaves the files that need it alone, writes the others, and exits 1 naming the set", async () => {
    const { vpcId, peers } = await neighbourhood([{ Name: "app-1", Role: "app" }]);
    const b = await boot(vpcId, {
      peers: { db: { tags: { Role: "db" }, min: 1, timeout: 3 }, app: { tags: { Role: "app" } } },
      files: [
        { path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db.internal\n{{/peers.db}}" },
        { path: "/etc/apps.list", block: "{{#peers.app}}{{ip}}\n{{/peers.app}}" },
      ],
    });
    await put(b.root, "/etc/hosts", HOSTS);

    const result = await run(b);

    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/files\.0 \/etc\/hosts: not touched: peers\.db has 0 of min 1/);
    expect(await read(b.root, "/etc/hosts")).toBe(HOSTS);
    expect(await read(b.root, "/etc/apps.list")).toBe(block([peers[0]!.privateIpv4]));
  });

  it("reads the instance's own tags from the API when IMDS does not expose them", async () => {
    const { vpcId, peers } = await neighbourhood(dbAndApps);
    const b = await boot(
      vpcId,
      {
        peers: peersConfig,
        files: [{ path: "/etc/db.list", block: "{{tags.Env}}: {{#peers.db}}{{ip}}{{/peers.db}}\n" }],
      },
      { tagsEnabled: false },
    );

    const result = await run(b);

    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/IMDS does not expose this instance's tags/);
    expect(await read(b.root, "/etc/db.list")).toBe(block([`test: ${peers[0]!.privateIpv4}`]));
  });

  it("says when cloud-init would overwrite /etc/hosts at the next boot, and how to avoid it", async () => {
    const { vpcId } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, threeFiles);
    await seedThreeFiles(b.root);
    await put(b.root, "/etc/cloud/cloud.cfg", "manage_etc_hosts: true\nsystem_info:\n  distro: ubuntu\n");
    await put(b.root, "/etc/cloud/templates/hosts.debian.tmpl", "## template:jinja\n127.0.0.1 localhost\n");

    const result = await run(b);

    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /manage_etc_hosts is true \(\/etc\/cloud\/cloud\.cfg\).*\/etc\/cloud\/templates\/hosts\.debian\.tmpl.*manage_etc_hosts: localhost/,
    );

    await put(b.root, "/etc/cloud/cloud.cfg.d/99-hosts.cfg", "manage_etc_hosts: localhost\n");
    expect((await run(b)).stderr).not.toMatch(/manage_etc_hosts/);
  });

  it("writes through a symbolic link only when follow_symlinks is set", async () => {
    const { vpcId, peers } = await neighbourhood(dbAndApps);
    const entry = { path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db.internal\n{{/peers.db}}" };
    const b = await boot(vpcId, { peers: peersConfig, files: [{ ...entry, follow_symlinks: true }] });
    await put(b.root, "/etc/hosts.real", HOSTS);
    await symlink("/etc/hosts.real", join(b.root, "etc/hosts"));

    expect((await run(b)).code).toBe(0);

    expect(await readlink(join(b.root, "etc/hosts"))).toBe("/etc/hosts.real");
    expect((await lstat(join(b.root, "etc/hosts"))).isSymbolicLink()).toBe(true);
    expect(await read(b.root, "/etc/hosts.real")).toBe(HOSTS + block([`${peers[0]!.privateIpv4} db.internal`]));
  });
});

describe("values from tags never become code, a line or a field", () => {
  const hostile = "x'); system('touch pwned'); //";

  it("leaves out of /etc/hosts a peer named localhost, one named like this instance and hostile ones; the rest is written", async () => {
    const { vpcId, peers } = await neighbourhood([
      { Name: "db-1", Role: "db" },
      { Name: "localhost", Role: "db" },
      { Name: "db-3", Role: "db", Alias: "$(touch pwned)" },
      { Name: "db\u2028evil", Role: "db" },
      { Name: "db-5", Role: "db", Alias: "a\u0085b" },
      { Name: "db-6", Role: "db" },
    ]);
    const b = await boot(vpcId, {
      peers: { db: { tags: { Role: "db" } } },
      files: [
        {
          path: "/etc/hosts",
          block:
            "{{#peers.db}}{{ip}} {{name}}.db.internal {{name}}{{#tags.Alias}} {{tags.Alias}}{{/tags.Alias}}\n{{/peers.db}}",
        },
      ],
    });
    await put(b.root, "/etc/hosts", HOSTS);
    const own = b.instance.privateIpv4.split(".").join("-");
    // A peer carrying this instance's own hostname (IMDS's local-hostname, ip-a-b-c-d.<region>.compute.internal).
    const twin = await world.launchInstance({ vpcId, tags: { Name: `ip-${own}`, Role: "db" } });

    const result = await run(b);

    expect(result.code).toBe(0);
    const [db1, localhost, db3, u2028, db5, db6] = peers;
    expect(await read(b.root, "/etc/hosts")).toBe(
      HOSTS + block([`${db1!.privateIpv4} db-1.db.internal db-1`, `${db6!.privateIpv4} db-6.db.internal db-6`]),
    );
    for (const left of [localhost, db3, u2028, db5, twin]) {
      expect(result.stderr).toContain(
        `/etc/hosts: left out peer ${left!.instanceId} (${left!.privateIpv4}) of peers.db`,
      );
    }
    expect(result.stderr).toContain(
      `tag Name "localhost" makes the /etc/hosts name "localhost", which is a reserved name`,
    );
    expect(result.stderr).toContain(`tag Alias "$(touch pwned)" has a '$'`);
    expect(result.stderr).toContain(`tag Name "db\\u2028evil" is not a DNS name`);
    for (const line of result.stderr.split(/\r\n|[\n\r\u0085\u2028\u2029]/u).filter(Boolean)) {
      expect(line).toMatch(/^bootlace: /);
    }
  });

  it("a hostile tag of this instance fails the files action naming tag, value and file; the file is untouched", async () => {
    const { vpcId } = await neighbourhood([]);
    const b = await boot(
      vpcId,
      {
        files: [
          {
            path: "/var/www/app/Config.php",
            replace: [{ match: "define\\('DB_NAME', '[^']*'\\)", with: "define('DB_NAME', '{{tags.DbName}}')" }],
          },
          { path: "/etc/motd", block: "{{instance.id}}\n" },
        ],
      },
      { tags: { DbName: hostile } },
    );
    await put(b.root, "/var/www/app/Config.php", CONFIG_PHP);

    const result = await run(b);

    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `files.0 /var/www/app/Config.php: not touched: this instance's tag DbName ${JSON.stringify(hostile)} has a "'" (files.0.replace.0.with)`,
    );
    expect(await read(b.root, "/var/www/app/Config.php")).toBe(CONFIG_PHP);
    // The other file is still written.
    expect(await read(b.root, "/etc/motd")).toBe(block([b.instance.instanceId]));
  });

  it("a tag this instance lacks fails the file that uses it (never rendered empty); a section on it is a condition", async () => {
    const { vpcId } = await neighbourhood([]);
    const b = await boot(vpcId, {
      files: [
        { path: "/etc/team.conf", block: "team={{tags.Team}}\n" },
        {
          path: "/etc/zone.conf",
          block: "{{#tags.Team}}team={{tags.Team}}{{/tags.Team}}{{^tags.Team}}no team{{/tags.Team}}\n",
        },
      ],
    });
    await put(b.root, "/etc/team.conf", "kept\n");

    const plan = await run(b, "plan");
    const result = await run(b);

    for (const r of [plan, result]) {
      expect(r.stderr).toContain(
        "files.0 /etc/team.conf: not touched: this instance has no tag Team, which files.0.block uses ({{tags.Team}}); its tags: ",
      );
    }
    expect(result.code).toBe(1);
    expect(await read(b.root, "/etc/team.conf")).toBe("kept\n");
    expect(await read(b.root, "/etc/zone.conf")).toBe(block(["no team"]));
  });

  it("{{#escape.php}} writes the same tag as a PHP string whose value is the tag, and no code", async () => {
    const { vpcId } = await neighbourhood([]);
    const b = await boot(
      vpcId,
      {
        files: [
          {
            path: "/var/www/app/Config.php",
            replace: [
              {
                match: "define\\('DB_NAME', .*\\);",
                with: "{{#escape.php}}define('DB_NAME', '{{tags.DbName}}');{{/escape.php}}",
              },
            ],
          },
        ],
      },
      { tags: { DbName: hostile } },
    );
    await put(b.root, "/var/www/app/Config.php", CONFIG_PHP);

    const result = await run(b);

    expect(result.code).toBe(0);
    const config = await read(b.root, "/var/www/app/Config.php");
    expect(config).toBe(
      CONFIG_PHP.replace("define('DB_NAME', 'app');", `define('DB_NAME', 'x\\'); system(\\'touch pwned\\'); //');`),
    );
    // PHP itself reads the file: it parses, and the constant is the tag, byte for byte; nothing ran.
    const php = await phpValue(join(b.root, "var/www/app/Config.php"), "DB_NAME");
    if (php !== undefined) {
      expect(php.lint).toBe(0);
      expect(php.value).toBe(hostile);
      expect(php.pwned).toBe(false);
    }
    expect(result.stderr).not.toMatch(/left out|not touched/);
  });
});

/** What PHP makes of a file (php -l, then include it and print a constant), or undefined when php is not installed. */
async function phpValue(
  file: string,
  constant: string,
): Promise<{ lint: number | null; value: string; pwned: boolean } | undefined> {
  const { spawnSync } = await import("node:child_process");
  if (spawnSync("php", ["--version"]).status !== 0) return undefined;
  const cwd = dirname(file);
  const lint = spawnSync("php", ["-l", file], { cwd }).status;
  const out = spawnSync("php", ["-r", `include ${JSON.stringify(file)}; echo ${constant};`], { cwd, encoding: "utf8" });
  const pwned = await stat(join(cwd, "pwned")).then(
    () => true,
    () => false,
  );
  return { lint, value: out.stdout, pwned };
}

describe("bad input: exit 2 with the key path, nothing changed", () => {
  const hostsEntry = { path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db.internal\n{{/peers.db}}" };

  async function refused(
    files: unknown[],
    expected: RegExp,
    seed?: (root: string) => Promise<unknown>,
    peers: unknown = peersConfig,
  ) {
    const { vpcId } = await neighbourhood(dbAndApps);
    const b = await boot(vpcId, { peers, files: [hostsEntry, ...files] });
    await put(b.root, "/etc/hosts", HOSTS);
    await seed?.(b.root);

    const result = await run(b);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(expected);
    expect(result.stderr).toMatch(/nothing was changed/);
    expect(await read(b.root, "/etc/hosts")).toBe(HOSTS);
    await expect(readdir(join(b.root, "var/lib/bootlace"))).resolves.toEqual([]);
  }

  it("a regular expression that does not compile", () =>
    refused(
      [{ path: "/etc/x.php", replace: [{ match: "define\\(('DB_HOST'", with: "x" }] }],
      /files\.1\.replace\.0\.match: not a valid regular expression/,
    ));

  it("a template file that does not exist", () =>
    refused(
      [{ path: "/etc/app.env", template: "/etc/bootlace/templates/missing.mustache" }],
      /files\.1\.template: cannot use \/etc\/bootlace\/templates\/missing\.mustache: ENOENT/,
    ));

  it("a template file that does not parse", () =>
    refused(
      [{ path: "/etc/app.env", template: "/etc/bootlace/templates/bad.mustache" }],
      /files\.1\.template: cannot use \/etc\/bootlace\/templates\/bad\.mustache: not a valid template/,
      (root) => put(root, "/etc/bootlace/templates/bad.mustache", "{{#peers.db}}no end\n"),
    ));

  it("a mode that is not an octal mode", () =>
    refused([{ ...hostsEntry, path: "/etc/other", mode: "0999" }], /files\.1\.mode: expected an octal mode/));

  it("a path that is a directory", () =>
    refused([{ ...hostsEntry, path: "/etc/somedir" }], /files\.1\.path: \/etc\/somedir is a directory/, (root) =>
      mkdir(join(root, "etc/somedir")),
    ));

  it("a path that is a symbolic link, without follow_symlinks", () =>
    refused([{ ...hostsEntry, path: "/etc/link" }], /files\.1\.path: \/etc\/link is a symbolic link/, (root) =>
      symlink("/etc/hosts", join(root, "etc/link")),
    ));

  it("a path whose symbolic link leads out of --root", () =>
    refused(
      [{ ...hostsEntry, path: "/etc/link", follow_symlinks: true }],
      /files\.1\.path: \/etc\/link: a symbolic link on the way leads out of the root/,
      (root) => symlink("../../outside", join(root, "etc/link")),
    ));

  it("a path with '..' in it", () =>
    refused(
      [{ ...hostsEntry, path: "/etc/../../outside" }],
      /files\.1\.path: expected a path without "\." or "\.\." parts/,
    ));

  it("an owner that does not exist", () =>
    refused([{ ...hostsEntry, path: "/etc/other", owner: "nosuchuser" }], /files\.1\.owner: no user named nosuchuser/));

  it("a peer set that is not configured", () =>
    refused(
      [{ path: "/etc/other", block: "{{#peers.redis}}{{ip}}{{/peers.redis}}" }],
      /files\.1\.block: unknown variable \{\{peers\.redis\}\}: peers\.redis is not configured \(peers: db, app\)/,
    ));

  it("a template file that uses a peer set that is not configured", () =>
    refused(
      [{ path: "/etc/app.env", template: "/etc/bootlace/templates/redis.mustache" }],
      /files\.1\.template: \/etc\/bootlace\/templates\/redis\.mustache: unknown variable \{\{peers\.redis\}\}: peers\.redis is not configured/,
      (root) => put(root, "/etc/bootlace/templates/redis.mustache", "{{#peers.redis}}{{ip}}{{/peers.redis}}\n"),
    ));

  it("a template with a variable that does not exist", () =>
    refused(
      [{ path: "/etc/other", block: "{{instance.nope}} {{#peers.db}}{{ipp}}{{/peers.db}}" }],
      /files\.1\.block: unknown variable \{\{instance\.nope\}\}: instance has no nope \(it has id, region,/,
    ));

  it("an escaper that does not exist", () =>
    refused(
      [{ path: "/etc/other", block: "{{#escape.sql}}{{tags.Env}}{{/escape.sql}}" }],
      /files\.1\.block: \{\{#escape\.sql\}\}: unknown escaper escape\.sql \(escapers: escape\.php, escape\.shell\)/,
    ));

  it("a peer filter that renders empty (this instance lacks the tag it names)", () =>
    refused(
      [],
      /peers\.db\.tags\.Team: "\{\{tags\.Team\}\}" uses \{\{tags\.Team\}\}, empty for this instance/,
      undefined,
      {
        db: { tags: { Role: "db", Team: "{{tags.Team}}" } },
      },
    ));
});

it("validate refuses {{instance.nope}} with exit 2, naming the key path and the variable", async () => {
  const root = await makeRoot();
  const file = join(root, "bootlace.yaml");
  await writeFile(file, 'files:\n  - path: /etc/motd\n    block: "{{instance.nope}}\\n"\n');

  const result = await runBootlace(["validate", file], { imds: "http://127.0.0.1:9", aws: world.proxy.endpoint, root });

  expect(result.code).toBe(2);
  expect(result.stderr).toContain("files.0.block: unknown variable {{instance.nope}}: instance has no nope");
});

describe("what a files run loads", () => {
  const loaded = (stderr: string) => /aws sdk loaded: (.*)/.exec(stderr)?.[1];

  it("files alone load no AWS SDK; with peers, only EC2", async () => {
    const { vpcId } = await neighbourhood(dbAndApps);
    const alone = await boot(vpcId, { files: [{ path: "/etc/motd", block: "{{instance.id}} {{tags.Env}}\n" }] });
    const withPeers = await boot(vpcId, threeFiles);
    await seedThreeFiles(withPeers.root);

    const a = await run(alone, "run", ["--log-level", "debug"]);
    const p = await run(withPeers, "run", ["--log-level", "debug"]);

    expect(a.code).toBe(0);
    expect(loaded(a.stderr)).toBe("none");
    expect(await read(alone.root, "/etc/motd")).toBe(block([`${alone.instance.instanceId} test`]));
    expect(p.code).toBe(0);
    expect(loaded(p.stderr)).toBe("@aws-sdk/client-ec2");
  });
});
