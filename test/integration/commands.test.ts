// check and on_change end to end: the real bundle, IMDS from the emulator, tags and peers from moto, real files under a
// temporary root. A hostile tag reaches an argv command as one argument and a string command as an environment
// variable, verbatim, and never runs; a string command that would render a value is refused before anything changes.
import { access, mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ImdsEmulator, ImdsInstance } from "../harness/imds-emulator";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let nextCidr = 120;

beforeAll(async () => {
  world = await startWorld();
});

afterAll(() => world?.close());

/** Every way a shell could be made to run `touch pwned…` in the command's folder (the root), and a line break. */
const HOSTILE = "$(touch pwned1); touch pwned2 `touch pwned3` && touch pwned4 | touch pwned5 'q\" \\ $HOME\nx";
const SENTINELS = ["pwned1", "pwned2", "pwned3", "pwned4", "pwned5"];

interface Booted {
  instance: ImdsInstance;
  imds: ImdsEmulator;
  root: string;
  peers: ImdsInstance[];
}

async function boot(config: unknown, o: { tagsEnabled?: boolean; peers?: Record<string, string>[] } = {}) {
  const { vpcId } = await world.createVpc(`10.${nextCidr++}.0.0/16`);
  const peers: ImdsInstance[] = [];
  for (const tags of o.peers ?? []) peers.push(await world.launchInstance({ vpcId, tags }));
  const instance = await world.launchInstance({ vpcId, tags: { Name: "web-1", Role: "web", X: HOSTILE } });
  const imds = await world.startImds(
    { ...instance, userData: `#bootlace\n${JSON.stringify(config)}\n` },
    { tagsEnabled: o.tagsEnabled ?? true },
  );
  return { instance, imds, root: await makeRoot(), peers } satisfies Booted;
}

const run = (b: Booted, command = "run") =>
  runBootlace([command, "--json"], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });

async function put(root: string, path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

const read = (root: string, path: string) => readFile(join(root, path), "utf8");

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

async function noSentinel(root: string): Promise<void> {
  for (const s of SENTINELS) expect(await exists(join(root, s))).toBe(false);
}

test("an argv check gets a hostile tag of this instance as one argument, verbatim, and runs none of it", async () => {
  const b = await boot({
    files: [
      {
        path: "/etc/app.conf",
        block: "managed\n",
        check: ["/bin/sh", "-c", 'printf "%s" "$1" > check-arg.out; test -s "$2"', "sh", "{{tags.X}}", "{{staged}}"],
      },
    ],
  });
  await put(b.root, "/etc/app.conf", "port = 80\n");

  const r = await run(b);

  expect(r.stderr).not.toMatch(/error/i);
  expect(r.code).toBe(0);
  expect(await read(b.root, "/check-arg.out")).toBe(HOSTILE);
  expect(await read(b.root, "/etc/app.conf")).toContain("managed\n");
  await noSentinel(b.root);
});

test("a string on_change reads the tag, the instance and the peers from BOOTLACE_* variables, verbatim", async () => {
  const b = await boot(
    {
      peers: { db: { tags: { Role: "db" } } },
      files: [
        {
          path: "/etc/app.conf",
          block: "managed\n",
          on_change:
            "printf '%s' \"$BOOTLACE_TAG_X\" > tag.out; " +
            'printf "%s|%s|%s|%s" "$BOOTLACE_INSTANCE_ID" "$BOOTLACE_PRIVATE_IPV4" "$BOOTLACE_PEERS_DB" {{path}} > values.out; ' +
            "env > env.out",
        },
      ],
    },
    // Tags from the EC2 API, not IMDS: the commands get them all the same.
    { tagsEnabled: false, peers: [{ Role: "db" }, { Role: "db" }] },
  );
  await put(b.root, "/etc/app.conf", "port = 80\n");

  const r = await run(b);

  expect(r.stderr).not.toMatch(/error/i);
  expect(r.code).toBe(0);
  expect(await read(b.root, "/tag.out")).toBe(HOSTILE);
  const dbs = b.peers.map((p) => p.privateIpv4).join(" ");
  expect(await read(b.root, "/values.out")).toBe(
    `${b.instance.instanceId}|${b.instance.privateIpv4}|${dbs}|${join(b.root, "etc/app.conf")}`,
  );
  // Nothing of bootlace's own environment but PATH (and HOME, locale, TZ when set): the harness gives it AWS_*.
  const names = (await read(b.root, "/env.out"))
    .split("\n")
    .filter((l) => /^[A-Z_][A-Z0-9_]*=/.test(l))
    .map((l) => l.slice(0, l.indexOf("=")));
  expect(names.some((n) => n.startsWith("AWS_"))).toBe(false);
  expect(names).toEqual(expect.arrayContaining(["PATH", "BOOTLACE_TAG_X", "BOOTLACE_PATH", "BOOTLACE_PEERS_DB"]));
  await noSentinel(b.root);
});

test("a string check that would render a tag is refused: validate and run exit 2, naming the key path; nothing changes", async () => {
  const config = { files: [{ path: "/etc/app.conf", block: "managed\n", check: "test -n {{tags.X}}" }] };
  const b = await boot(config);
  await put(b.root, "/etc/app.conf", "port = 80\n");
  const file = join(b.root, "bootlace.yaml");
  await writeFile(file, JSON.stringify(config));

  const validated = await runBootlace(["validate", file], {
    imds: "http://127.0.0.1:9",
    aws: world.proxy.endpoint,
    root: b.root,
  });
  const r = await run(b);

  for (const out of [validated, r]) {
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(
      "files.0.check: {{tags.X}} would put a value into a shell command: a string command may use only {{staged}} and {{path}}",
    );
    expect(out.stderr).toContain('"$BOOTLACE_TAG_X"');
  }
  expect(await read(b.root, "/etc/app.conf")).toBe("port = 80\n");
  await noSentinel(b.root);
});

test("an argv check whose program is not there fails its file with 'not found', the file untouched", async () => {
  const b = await boot({
    files: [{ path: "/etc/app.conf", block: "managed\n", check: ["/usr/bin/no-such-checker", "{{staged}}"] }],
  });
  await put(b.root, "/etc/app.conf", "port = 80\n");

  const r = await run(b);

  expect(r.code).toBe(1);
  expect(r.stderr).toContain('check refused the new content (not run: "/usr/bin/no-such-checker" not found)');
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(await read(b.root, "/etc/app.conf")).toBe("port = 80\n");
});
