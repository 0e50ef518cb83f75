// The files action in-process on a temporary root, with the peer sets handed in as the peers action would: the cases
// the end-to-end tests do not reach cheaply.
import { mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import type { FilesSaved } from "../../agent/actions/files";
import { filesAction } from "../../agent/actions/files";
import type { PeerSetResult, PeersOutput } from "../../agent/actions/peers";
import type { ActionContext } from "../../agent/actions/types";
import type { LogFields, Logger } from "../../agent/core/log";
import type { PeerView } from "../../agent/template/render";
import { testContext } from "../support/context";

let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), "bootlace-files-"));
  await mkdir(join(root, "etc"));
});

afterEach(() => rm(root, { recursive: true, force: true }));

const peer = (n: number): PeerView => ({
  id: `i-00000000000000${n.toString().padStart(3, "0")}`,
  ip: `10.0.0.${n}`,
  name: `db-${n}`,
  az: "us-east-1a",
  tags: { Name: `db-${n}`, Role: "db" },
});

const set = (peers: PeerView[], over: Partial<PeerSetResult> = {}): PeerSetResult => ({
  peers,
  min: 0,
  timeout: 0,
  status: "ok",
  ...over,
});

function recordingLog(lines: string[]): Logger {
  const log = (level: string) => (msg: string, _f?: LogFields) => lines.push(`${level}: ${msg}`);
  const logger: Logger = {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: () => logger,
  };
  return logger;
}

function context(
  config: unknown,
  over: { sets?: Record<string, PeerSetResult>; previous?: FilesSaved; tags?: Record<string, string> } = {},
) {
  const lines: string[] = [];
  // The peers action's copy of the tags is empty when its filters do not use them: files reads ctx.tags().
  const peers: PeersOutput = { sets: over.sets ?? {}, tags: {} };
  const ctx: ActionContext = testContext(config, {
    root,
    imdsTags: over.tags ?? { Env: "test" },
    upstream: { peers },
    previous: over.previous,
    log: recordingLog(lines),
  });
  return { ctx, lines };
}

async function put(path: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

const read = (path: string) => readFile(join(root, path), "utf8");

async function runFiles(ctx: ActionContext) {
  const plan = await filesAction.plan(ctx);
  return { plan, outcome: await filesAction.apply(ctx, plan) };
}

const dbPeers = { db: { tags: { Role: "db" } } };

it("reports a replace that matches nothing, and still writes the edits that matched", async () => {
  await put("/app/config.php", "<?php\ndefine('DB_HOST', 'localhost');\n");
  const { ctx, lines } = context(
    {
      peers: dbPeers,
      files: [
        {
          path: "/app/config.php",
          replace: [
            { match: "define\\('DB_HOST', '[^']*'\\)", with: "define('DB_HOST', '{{peers.db.0.ip}}')" },
            { match: "define\\('REDIS_HOST'", with: "x" },
          ],
        },
      ],
    },
    { sets: { db: set([peer(5)]) } },
  );

  const { outcome } = await runFiles(ctx);

  expect(await read("/app/config.php")).toBe("<?php\ndefine('DB_HOST', '10.0.0.5');\n");
  expect(outcome.failures).toEqual([
    `files.0.replace.1: match "define\\\\('REDIS_HOST'" found nothing in /app/config.php`,
  ]);
  expect(lines.filter((l) => l.startsWith("warn"))).toHaveLength(1);
});

it("inserts a value with a '$' literally in a replace, never as a group reference", async () => {
  await put("/app/x.conf", "user = old\n");
  // '$' is outside the token alphabet: the value reaches the file only through an escaper.
  const withValue = "$1 = {{#escape.php}}'{{tags.Env}}'{{/escape.php}}-$$";
  const { ctx } = context(
    { files: [{ path: "/app/x.conf", replace: [{ match: "^(user) = .*", with: withValue }] }] },
    { tags: { Env: "a$1b" } },
  );

  await runFiles(ctx);

  expect(await read("/app/x.conf")).toBe("user = 'a$1b'-$\n");
});

it("refuses a value with a '$' outside an escaper, naming the tag, the value and the key path", async () => {
  await put("/app/x.conf", "user = old\n");
  const { ctx } = context(
    { files: [{ path: "/app/x.conf", replace: [{ match: "^(user) = .*", with: "$1 = {{tags.Env}}" }] }] },
    { tags: { Env: "a$1b" } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    `files.0 /app/x.conf: not touched: this instance's tag Env "a$1b" has a '$' (files.0.replace.0.with)`,
  ]);
  expect(await read("/app/x.conf")).toBe("user = old\n");
});

it("a replace on a file that does not exist is not done, and said", async () => {
  await mkdir(join(root, "app"));
  const { ctx } = context({ files: [{ path: "/app/none.php", replace: [{ match: "x", with: "y" }] }] });

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    "files.0 /app/none.php: not touched: it does not exist, and replace edits an existing file",
  ]);
});

it("a set short after the wait that no file uses is reported by the files action", async () => {
  const { ctx } = context(
    { peers: { ...dbPeers, cache: { tags: { Role: "cache" } } }, files: [{ path: "/etc/x", block: "static\n" }] },
    { sets: { db: set([peer(5)]), cache: set([], { min: 1, timeout: 10, status: "short", waitedMs: 10_000 }) } },
  );

  const { outcome } = await runFiles(ctx);

  expect(await read("/etc/x")).toContain("static");
  expect(outcome.failures).toEqual(["peers.cache: 0 peers; fewer than min 1 after 10 s"]);
});

it("in a plan, a set still waiting is used as found so far, and the change says run will wait", async () => {
  const { ctx } = context(
    { peers: dbPeers, files: [{ path: "/etc/hosts", block: "{{#peers.db}}{{ip}}\n{{/peers.db}}" }] },
    { sets: { db: set([peer(5)], { min: 2, timeout: 60, status: "waiting" }) } },
  );

  const plan = await filesAction.plan(ctx);

  expect(plan.changes).toEqual([
    {
      kind: "create",
      target: "/etc/hosts",
      detail: "block main: new file, 3 lines (with the peers found so far; run waits for peers.db)",
    },
  ]);
});

it("removes the block of a file no longer configured, from the previous run's state", async () => {
  await put("/etc/hosts", "a\n# BEGIN bootlace block main (managed)\n10.0.0.5\n# END bootlace block main\nb\n");
  const { ctx } = context(
    { files: [] },
    { previous: { blocks: [{ path: "/etc/hosts", name: "main", comment: "#" }] } },
  );

  const { outcome } = await runFiles(ctx);

  expect(await read("/etc/hosts")).toBe("a\nb\n");
  expect(outcome.changes).toEqual([
    { kind: "update", target: "/etc/hosts", detail: "block main removed (no longer configured)" },
  ]);
  expect(outcome.state).toEqual({ blocks: [] });
});

it("keeps the previous run's blocks in the state for a file it could not touch", async () => {
  await put("/etc/hosts", "# BEGIN bootlace block main\n");
  const previous: FilesSaved = { blocks: [{ path: "/etc/hosts", name: "main", comment: "#" }] };
  const { ctx } = context({ files: [{ path: "/etc/hosts", block: "x\n" }] }, { previous });

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    expect.stringMatching(/^files\.0 \/etc\/hosts: not touched: the markers .* damaged/),
  ]);
  expect(outcome.state).toEqual(previous);
  expect(await read("/etc/hosts")).toBe("# BEGIN bootlace block main\n");
});

it("does not touch a file that is not UTF-8 text (it could not keep the rest byte for byte)", async () => {
  await put("/etc/latin1.conf", Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
  const { ctx } = context({ files: [{ path: "/etc/latin1.conf", block: "x\n" }] });

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([expect.stringMatching(/not touched: it is not UTF-8 text/)]);
  expect(await readFile(join(root, "etc/latin1.conf"))).toEqual(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x0a]));
});

it("does not create a file whose directory does not exist", async () => {
  const { ctx } = context({ files: [{ path: "/etc/app/app.env", block: "x\n" }] });

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    `files.0 /etc/app/app.env: not touched: its directory ${root}/etc/app does not exist`,
  ]);
});

it("does not touch a file that would carry an unsafe tag of this instance", async () => {
  const { ctx } = context(
    { files: [{ path: "/etc/env", block: "ENV={{tags.Env}}\n" }] },
    { tags: { Env: "prod\nEVIL=1" } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    `files.0 /etc/env: not touched: this instance's tag Env "prod\\nEVIL=1" has a line break (U+000A) (files.0.block)`,
  ]);
});

it("does not touch a file whose template uses a tag this instance does not have, naming the tag and key path", async () => {
  await put("/etc/env", "kept\n");
  const { ctx } = context({
    files: [
      { path: "/etc/env", block: "TEAM={{tags.Team}}\n" },
      // A section on the tag is a condition: without the tag, the file is written without it.
      {
        path: "/etc/zone",
        block: "{{#tags.Team}}team={{tags.Team}}{{/tags.Team}}{{^tags.Team}}no team{{/tags.Team}}\n",
      },
    ],
  });

  const { plan, outcome } = await runFiles(ctx);

  expect(plan.data.files[0]?.problem).toBe(
    "not touched: this instance has no tag Team, which files.0.block uses ({{tags.Team}}); its tags: Env",
  );
  expect(outcome.failures).toHaveLength(1);
  expect(await read("/etc/env")).toBe("kept\n");
  expect(await read("/etc/zone")).toContain("\nno team\n");
});

it("leaves out of a file a peer without a tag the file uses, and one whose name is reserved in /etc/hosts", async () => {
  await put("/etc/hosts", "127.0.0.1 localhost\n");
  const tagged = (n: number, tags: Record<string, string>): PeerView => ({
    ...peer(n),
    name: tags.Name ?? `db-${n}`,
    tags: { ...peer(n).tags, ...tags },
  });
  const { ctx, lines } = context(
    {
      peers: dbPeers,
      files: [{ path: "/etc/hosts", block: "{{#peers.db}}{{ip}} {{name}} {{tags.Zone}}\n{{/peers.db}}" }],
    },
    {
      sets: {
        db: set([
          tagged(1, { Zone: "blue" }),
          tagged(2, {}),
          tagged(3, { Zone: "red", Name: "localhost" }),
          tagged(4, { Zone: "green", Name: "ip-10-0-0-5" }),
          tagged(5, { Zone: "localhost6" }),
          tagged(6, { Zone: "white" }),
        ]),
      },
    },
  );
  ctx.instance.hostname = "ip-10-0-0-5.ec2.internal";

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toBeUndefined();
  expect(await read("/etc/hosts")).toContain("\n10.0.0.1 db-1 blue\n10.0.0.6 db-6 white\n# END");
  const warnings = lines.filter((l) => l.startsWith("warn"));
  expect(warnings).toEqual([
    `warn: /etc/hosts: left out peer ${peer(2).id} (10.0.0.2) of peers.db: it has no tag Zone, which files.0.block uses ({{tags.Zone}})`,
    `warn: /etc/hosts: left out peer ${peer(3).id} (10.0.0.3) of peers.db: its tag Name "localhost" makes the /etc/hosts name "localhost", which is a reserved name (files.0.block)`,
    `warn: /etc/hosts: left out peer ${peer(4).id} (10.0.0.4) of peers.db: its tag Name "ip-10-0-0-5" makes the /etc/hosts name "ip-10-0-0-5", which is a reserved name (files.0.block)`,
    `warn: /etc/hosts: left out peer ${peer(5).id} (10.0.0.5) of peers.db: its tag Zone "localhost6" makes the /etc/hosts name "localhost6", which is a reserved name (files.0.block)`,
  ]);
});

it("refuses a template file with an unknown variable at plan, naming the key path and the variable", async () => {
  await put("/etc/bootlace/app.mustache", "id={{instance.id}}\n{{#peers.db}}{{ipp}}{{/peers.db}}\n");
  const { ctx } = context({
    peers: dbPeers,
    files: [{ path: "/etc/app.env", template: "/etc/bootlace/app.mustache" }],
  });

  await expect(filesAction.plan(ctx)).rejects.toThrow(
    "files.0.template: /etc/bootlace/app.mustache: unknown variable {{ipp}}: no variable ipp",
  );
});

it("refuses a template file that is not UTF-8 text at plan, and touches nothing", async () => {
  await put("/etc/bootlace/app.mustache", Buffer.from([0x6e, 0x61, 0x6d, 0x65, 0x3d, 0xe9, 0x0a]));
  await put("/etc/app.env", "old\n");
  const { ctx } = context({ files: [{ path: "/etc/app.env", template: "/etc/bootlace/app.mustache" }] });

  await expect(filesAction.plan(ctx)).rejects.toThrow("cannot use /etc/bootlace/app.mustache: it is not UTF-8 text");
  expect(await readFile(join(root, "etc/app.env"), "utf8")).toBe("old\n");
});

it("an argv check gets each rendered value as one argument, verbatim, and never runs it", async () => {
  await put("/etc/x", "old\n");
  const { ctx } = context(
    {
      files: [
        {
          path: "/etc/x",
          block: "new\n",
          check: ["/bin/sh", "-c", 'printf "%s|" "$@" > check.out', "sh", "{{staged}}", "{{tags.Env}}", "{{path}}"],
        },
      ],
    },
    { tags: { Env: "a b; touch pwned $(touch pwned2) `touch pwned3`" } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toBeUndefined();
  const [staged, env, path] = (await read("/check.out")).split("|");
  expect(staged).toMatch(new RegExp(`^${root}/etc/\\.x\\.bootlace-[0-9a-f]{12}$`));
  expect(env).toBe("a b; touch pwned $(touch pwned2) `touch pwned3`");
  expect(path).toBe(join(root, "etc/x"));
  expect(await read("/etc/x")).toContain("new");
  for (const sentinel of ["pwned", "pwned2", "pwned3"]) {
    await expect(readFile(join(root, sentinel))).rejects.toThrow(/ENOENT/);
  }
});

it("a string check gets {{staged}} and {{path}} shell-quoted and the values as BOOTLACE_* variables", async () => {
  await put("/etc/x", "old\n");
  const { ctx } = context(
    {
      files: [
        {
          path: "/etc/x",
          block: "new\n",
          check: `printf '%s|' {{staged}} {{path}} "$BOOTLACE_TAG_ENV" "$BOOTLACE_STAGED" "$BOOTLACE_INSTANCE_ID" > check.out`,
        },
      ],
    },
    { tags: { Env: "a b; touch pwned" } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toBeUndefined();
  const [staged, path, tag, stagedEnv, id] = (await read("/check.out")).split("|");
  expect(path).toBe(join(root, "etc/x"));
  expect(tag).toBe("a b; touch pwned");
  expect(stagedEnv).toBe(staged);
  expect(id).toBe(ctx.instance.id);
  await expect(readFile(join(root, "pwned"))).rejects.toThrow(/ENOENT/);
});

it("a check whose argument would hold NUL is not run, and the file is left as it was", async () => {
  await put("/etc/x", "old\n");
  const { ctx, lines } = context(
    {
      files: [{ path: "/etc/x", block: "new\n", check: ["/bin/true", "{{tags.Env}}"] }],
    },
    { tags: { Env: "a\0b" } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    "files.0 /etc/x: not touched: files.0.check.1: renders with a NUL character (from {{tags.Env}}), which no argument can hold",
  ]);
  expect(await read("/etc/x")).toBe("old\n");
  expect(lines).toEqual([
    "warn: files.0 /etc/x: not touched: files.0.check.1: renders with a NUL character (from {{tags.Env}}), which no argument can hold",
  ]);
});

it("a value holding NUL is left out of a command's environment, with a warning; the command still runs", async () => {
  const { ctx, lines } = context(
    {
      files: [{ path: "/etc/x", block: "new\n", on_change: 'printf "%s" "${BOOTLACE_TAG_ENV-unset}" > env.out' }],
    },
    { tags: { Env: "a\0b" } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toBeUndefined();
  expect(await read("/env.out")).toBe("unset");
  expect(lines).toContain(
    'warn: commands of /etc/x: BOOTLACE_TAG_ENV not set: this instance\'s tag "Env" holds a NUL character',
  );
});

it("on_change runs once per distinct command, with {{path}} and the peers' addresses in its environment", async () => {
  const { ctx } = context(
    {
      peers: dbPeers,
      files: [
        { path: "/etc/a", block: "a\n", on_change: 'printf "%s\\n" "$BOOTLACE_PEERS_DB" >> reloads.log' },
        { path: "/etc/b", block: "b\n", on_change: 'printf "%s\\n" "$BOOTLACE_PEERS_DB" >> reloads.log' },
        { path: "/etc/c", block: "c\n", on_change: ["/bin/sh", "-c", 'echo "$1" >> paths.log', "sh", "{{path}}"] },
        { path: "/etc/d", block: "d\n", on_change: "echo {{path}} >> paths.log" },
      ],
    },
    { sets: { db: set([peer(1), peer(2), { ...peer(3), ip: "10.0.0.3 evil" }]) } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toBeUndefined();
  expect(await read("/reloads.log")).toBe("10.0.0.1 10.0.0.2\n");
  expect(await read("/paths.log")).toBe(`${join(root, "etc/c")}\n${join(root, "etc/d")}\n`);
  expect(outcome.changes.filter((c) => c.kind === "on_change").map((c) => c.target)).toEqual([
    'printf "%s\\n" "$BOOTLACE_PEERS_DB" >> reloads.log',
    `/bin/sh -c echo "$1" >> paths.log sh ${join(root, "etc/c")}`,
    `echo '${join(root, "etc/d")}' >> paths.log`,
  ]);
});

it("a missing program fails the file with 'not found' and leaves it as it was", async () => {
  await put("/etc/x", "old\n");
  const { ctx } = context({ files: [{ path: "/etc/x", block: "new\n", check: ["no-such-checker", "{{staged}}"] }] });

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    expect.stringMatching(
      /^files\.0 \/etc\/x: check refused the new content \(not run: "no-such-checker" not found in PATH/,
    ),
  ]);
  expect(await read("/etc/x")).toBe("old\n");
});

it("asks IAM for ec2:DescribeInstances only when a file (or its commands) may use this instance's tags", () => {
  const permissions = (files: unknown[]) => filesAction.permissions?.(context({ files }).ctx.config);
  expect(permissions([{ path: "/etc/a", block: "{{instance.id}}\n" }])).toEqual([]);
  expect(permissions([{ path: "/etc/a", block: "{{tags.Env}}\n" }])).toEqual([
    expect.objectContaining({ Action: ["ec2:DescribeInstances"] }),
  ]);
  expect(permissions([{ path: "/etc/a", template: "/t.mustache" }])).toHaveLength(1);
  // Commands see the tags as BOOTLACE_TAG_*.
  expect(permissions([{ path: "/etc/a", block: "x\n", on_change: "true" }])).toHaveLength(1);
});

it("in a plan whose peer discovery failed, a file using the peers is not shown as emptied", async () => {
  await put("/etc/hosts", "a\n");
  const { ctx } = context({
    peers: dbPeers,
    files: [{ path: "/etc/hosts", block: "{{#peers.db}}{{ip}}{{/peers.db}}" }],
  });
  ctx.upstream = {};

  const plan = await filesAction.plan(ctx);

  expect(plan.changes).toEqual([]);
  expect(plan.data.files[0]?.problem).toBe("not touched: peers.db could not be discovered");
});

it("refuses a file whose symbolic link leads out of the root, before anything is written", async () => {
  await writeFile(join(dirname(root), `${basename(root)}-outside`), "outside\n");
  await symlink(`../../${basename(root)}-outside`, join(root, "etc/hosts"));
  const { ctx } = context({ files: [{ path: "/etc/hosts", block: "x\n", follow_symlinks: true }] });

  await expect(filesAction.plan(ctx)).rejects.toThrow(
    `files.0.path: /etc/hosts: a symbolic link on the way leads out of the root ${root}`,
  );
  expect(await readFile(join(dirname(root), `${basename(root)}-outside`), "utf8")).toBe("outside\n");
  await rm(join(dirname(root), `${basename(root)}-outside`));
});

it("does not remove a block from a file outside the root named in the previous run's state", async () => {
  const outside = join(dirname(root), `${basename(root)}-victim`);
  const marked = "# BEGIN bootlace block main\nx\n# END bootlace block main\n";
  await writeFile(outside, marked);
  await symlink(`../../${basename(root)}-victim`, join(root, "etc/victim"));
  const { ctx } = context(
    { files: [] },
    { previous: { blocks: [{ path: "/etc/victim", name: "main", comment: "#" }] } },
  );

  const { outcome } = await runFiles(ctx);

  expect(outcome.failures).toEqual([
    expect.stringMatching(/^files \(removed\) \/etc\/victim: block not removed: .*leads out of the root/),
  ]);
  expect(await readFile(outside, "utf8")).toBe(marked);
  await rm(outside);
});

it("removes what a killed writer left beside a file it has nothing to write to", async () => {
  const config = { files: [{ path: "/etc/x", block: "same\n" }] };
  await runFiles(context(config).ctx);
  await put("/etc/.x.bootlace-0123456789ab", "half a file");
  await put("/etc/.x.bootlace-bak.bootlace-0123456789ab", "half a backup");

  const { plan, outcome } = await runFiles(context(config).ctx);

  expect(plan.changes).toEqual([]);
  expect(outcome.failures).toBeUndefined();
  expect(await readdir(join(root, "etc"))).toEqual(["x"]);
});

it("waits for elastic_ip when a file's command names the Elastic IP's variables (or its argv uses the address)", () => {
  const deps = (files: unknown[]) =>
    filesAction.dependsOn(context({ elastic_ip: { allocation_id: "eipalloc-0abc1234" }, files }).ctx.config);
  expect(deps([{ path: "/etc/a", block: "x\n", on_change: "systemctl reload a" }])).toEqual([]);
  expect(deps([{ path: "/etc/a", block: "x\n", on_change: 'echo "$BOOTLACE_ELASTIC_IP" > /run/eip' }])).toEqual([
    "elastic_ip",
  ]);
  expect(deps([{ path: "/etc/a", block: "x\n", check: ["/bin/t", "{{instance.elastic_ip}}"] }])).toEqual([
    "elastic_ip",
  ]);
});
