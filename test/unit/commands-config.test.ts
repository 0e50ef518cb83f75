// check and on_change as configured: the two forms the schema takes, the string commands it refuses (a value in a
// shell's text) with the key path, the variable and the way out, the README's forms that keep working, the argv
// rendering, and the environment the commands see.
import { validateFile } from "../../agent/config/validate";
import { commandEnv, DEFAULT_PATH } from "../../agent/files/command-env";
import type { CommandView } from "../../agent/template/command";
import { commandMentions, commandProblems, renderCommand } from "../../agent/template/command";
import { templateView } from "../../agent/template/render";
import { instance } from "../support/context";

const validate = (files: string) =>
  validateFile("/etc/bootlace/bootlace.yaml", Buffer.from(`peers:\n  db: { tags: { Role: db } }\nfiles:\n${files}`));

/** The messages validate gives for one files entry (at line 4), or [] when it is accepted. */
async function refusals(entry: string): Promise<string[]> {
  try {
    await validate(`  - ${entry}\n`);
    return [];
  } catch (error) {
    return (error as Error).message.split("\n");
  }
}

describe("the schema of check and on_change", () => {
  test.each([
    ['check: "test -s {{staged}}"'],
    ["check: 'php -l {{staged}} && test -n \"$BOOTLACE_TAG_ENV\"'"],
    ['check: ["php", "-l", "{{staged}}"]'],
    ['check: ["/usr/local/bin/check-hosts", "{{staged}}", "{{tags.Env}}", "{{#peers.db}}{{ip}} {{/peers.db}}"]'],
    ["on_change: systemctl reload php8.2-fpm"],
    ["on_change: systemctl reload postgresql"],
    ['on_change: echo "php-fpm reloaded" >> reloads.log'],
    ['on_change: "cp {{path}} /var/backups/"'],
    ['on_change: ["systemctl", "reload", "app@{{tags.Env}}"]'],
  ])("accepts %s", async (command) => {
    expect(await refusals(`{ path: /etc/a, block: "x", ${command} }`)).toEqual([]);
  });

  test("a string check using a tag is refused, naming the key path, the variable and both ways out", async () => {
    expect(await refusals('{ path: /etc/a, block: "x", check: "test -n {{tags.X}}" }')).toEqual([
      "/etc/bootlace/bootlace.yaml, line 4: files.0.check: {{tags.X}} would put a value into a shell command: a string " +
        'command may use only {{staged}} and {{path}}. Use the argv form (a list such as ["/usr/local/bin/tool", ' +
        '"{{tags.X}}"]: each element one argument, no shell) or the environment variable "$BOOTLACE_TAG_X", got ' +
        '"test -n {{tags.X}}"',
    ]);
  });

  test.each([
    [
      'check: "test -n \\"{{{tags.Db Name}}}\\""',
      "files.0.check: {{{tags.Db Name}}} would put",
      '"$BOOTLACE_TAG_DB_NAME"',
    ],
    ['on_change: "echo {{instance.id}}"', "files.0.on_change: {{instance.id}} would put", '"$BOOTLACE_INSTANCE_ID"'],
    ['on_change: "x {{& instance.private_ipv4}}"', "{{{instance.private_ipv4}}} would put", "$BOOTLACE_PRIVATE_IPV4"],
    ['check: "echo {{#peers.db}}{{ip}}{{/peers.db}}"', "files.0.check: {{#peers.db}} would put", "$BOOTLACE_PEERS_DB"],
    ['on_change: "echo {{tags}}"', "{{tags}} would put", "the BOOTLACE_* environment variables"],
  ])("a string command %s is refused", async (command, start, hint) => {
    const messages = await refusals(`{ path: /etc/a, block: "x", ${command} }`);
    expect(messages.length).toBeGreaterThan(0);
    expect(messages[0]).toContain(start);
    expect(messages[0]).toContain(hint);
    expect(messages[0]).toContain("may use only");
  });

  test("on_change has no staged file; {{{staged}}} would not be quoted", async () => {
    expect(await refusals('{ path: /etc/a, block: "x", on_change: "cat {{staged}}" }')).toEqual([
      '/etc/bootlace/bootlace.yaml, line 4: files.0.on_change: {{staged}} exists only in check: on_change runs after the file is written, got "cat {{staged}}"',
    ]);
    expect(await refusals('{ path: /etc/a, block: "x", on_change: ["cat", "{{staged}}"] }')).toEqual([
      "/etc/bootlace/bootlace.yaml, line 4: files.0.on_change.1: {{staged}} exists only in check: on_change runs after the file is written",
    ]);
    expect(await refusals('{ path: /etc/a, block: "x", check: "test -s {{{staged}}}" }')).toEqual([
      '/etc/bootlace/bootlace.yaml, line 4: files.0.check: {{{staged}}}: write {{staged}}, which bootlace shell-quotes ({{{staged}}} would not be), got "test -s {{{staged}}}"',
    ]);
  });

  test("the program of an argv may not come from a value, and may not be empty", async () => {
    for (const program of ['"{{tags.Tool}}"', '"/usr/bin/{{tags.Tool}}"', '"{{=<% %>=}}php"', '"{{! x }}php"']) {
      const messages = await refusals(`{ path: /etc/a, block: "x", check: [${program}, "{{staged}}"] }`);
      expect(messages).toEqual([
        expect.stringContaining("line 4: files.0.check.0: the program may not come from a value"),
      ]);
    }
    expect(await refusals('{ path: /etc/a, block: "x", check: ["", "{{staged}}"] }')).toEqual([
      "/etc/bootlace/bootlace.yaml, line 4: files.0.check.0: the program is empty",
    ]);
  });

  test("neither an empty list, an empty string nor another type is a command", async () => {
    expect(await refusals('{ path: /etc/a, block: "x", check: [] }')).toEqual([
      "/etc/bootlace/bootlace.yaml, line 4: files.0.check: the list needs the program",
    ]);
    expect(await refusals('{ path: /etc/a, block: "x", on_change: "" }')).toEqual([
      '/etc/bootlace/bootlace.yaml, line 4: files.0.on_change: the command is empty, got ""',
    ]);
    expect(await refusals('{ path: /etc/a, block: "x", check: 5 }')).toEqual([
      expect.stringMatching(/line 4: files\.0\.check: expected a command: a string .* got 5$/),
    ]);
    expect(await refusals('{ path: /etc/a, block: "x", check: ["php", 5] }')).toEqual([
      expect.stringMatching(/line 4: files\.0\.check: expected a command/),
    ]);
  });

  test("an argv naming a peer set that is not configured is refused like a template", async () => {
    expect(await refusals('{ path: /etc/a, block: "x", check: ["x", "{{#peers.web}}{{ip}}{{/peers.web}}"] }')).toEqual([
      expect.stringContaining(
        "files.0.check.1: unknown variable {{peers.web}}: peers.web is not configured (peers: db)",
      ),
    ]);
  });

  test("an argv element's unknown variables and escapers are refused, its own paths are not", async () => {
    expect(await refusals('{ path: /etc/a, block: "x", on_change: ["x", "{{instance.nope}}", "{{staged}}"] }')).toEqual(
      [
        expect.stringContaining("files.0.on_change.2: {{staged}} exists only in check"),
        expect.stringContaining("files.0.on_change.1: unknown variable {{instance.nope}}"),
      ],
    );
    expect(
      await refusals('{ path: /etc/a, block: "x", check: ["x", "{{#escape.php}}{{tags.A}}{{/escape.php}}"] }'),
    ).toEqual([expect.stringContaining("files.0.check.1: {{#escape.php}}: escapers apply in files only")]);
    expect(
      await refusals('{ path: /etc/a, block: "x", check: ["x", "{{staged}}", "{{path}}", "{{peers.db.0.ip}}"] }'),
    ).toEqual([]);
  });
});

describe("commandProblems", () => {
  test("an element that is not a template is reported at its index", () => {
    const problems = commandProblems(["x", "ok", "{{#a}}"], "check");
    expect(problems.map((p) => p.path)).toEqual([[2]]);
    expect(problems[0]?.message).toMatch(/^not a valid template: /);
  });
});

const view = (over: Partial<CommandView> = {}): CommandView => ({
  ...templateView(instance, { Env: "prod", Evil: "$(touch pwned); `x` 'q\"" }, {}),
  path: "/root dir/etc/a",
  ...over,
});

describe("renderCommand", () => {
  test("a string: /bin/sh -c with {{staged}} and {{path}} shell-quoted, nothing else rendered", () => {
    const v = view({ staged: "/root dir/etc/.a.bootlace-0123456789ab", path: "/r/it's" });
    expect(renderCommand("test -s {{staged}} && cp {{path}} /b", v, "files.0.check")).toEqual([
      "/bin/sh",
      "-c",
      "test -s '/root dir/etc/.a.bootlace-0123456789ab' && cp '/r/it'\\''s' /b",
    ]);
    // Were the schema bypassed, a value is still not rendered into the shell's text.
    expect(renderCommand("echo {{tags.Evil}}", v, "files.0.check")).toEqual(["/bin/sh", "-c", "echo "]);
  });

  test("an argv: each element rendered with the whole view, one argument each, verbatim", () => {
    const peers = { db: [{ id: "i-1", ip: "10.0.0.1", name: "a b", az: "x", tags: {} }] };
    const v = { ...view({ staged: "/s" }), peers };
    expect(
      renderCommand(
        ["/bin/t", "{{staged}}", "{{tags.Evil}}", "{{#peers.db}}{{name}};{{/peers.db}}"],
        v,
        "files.0.check",
      ),
    ).toEqual(["/bin/t", "/s", "$(touch pwned); `x` 'q\"", "a b;"]);
  });

  test("an element holding NUL once rendered is refused, naming the value and the key path", () => {
    const v = view({ tags: { X: "a\0b" } });
    expect(() => renderCommand(["/bin/t", "-", "--x={{tags.X}}"], v, "files.3.on_change")).toThrow(
      "files.3.on_change.2: renders with a NUL character (from {{tags.X}}), which no argument can hold",
    );
    const peers = { db: [{ id: "i-1", ip: "10.0.0.1", name: "n", az: "x", tags: { Role: "d\0b" } }] };
    expect(() =>
      renderCommand(["/bin/t", "{{#peers.db}}{{tags.Role}}{{/peers.db}}"], { ...view(), peers }, "files.0.check"),
    ).toThrow('files.0.check.1: renders with a NUL character (from tag "Role" of i-1 in peers.db)');
  });
});

test("commandMentions: the peers' and the changing addresses' variables, read from the text", () => {
  expect(commandMentions('echo "$BOOTLACE_PEERS_DB"')).toEqual({ peers: true, elasticIp: false });
  expect(commandMentions(["x", "$BOOTLACE_ELASTIC_IP"])).toEqual({ peers: false, elasticIp: true });
  expect(commandMentions("echo ${BOOTLACE_PUBLIC_IPV4}")).toEqual({ peers: false, elasticIp: true });
  expect(commandMentions("systemctl reload x")).toEqual({ peers: false, elasticIp: false });
  expect(commandMentions(undefined)).toEqual({ peers: false, elasticIp: false });
});

describe("commandEnv", () => {
  const base = {
    view: templateView({ ...instance, hostname: "ip-10-0-1-5.ec2.internal", publicIpv4: "203.0.113.7" }),
    tags: {} as Record<string, string> | undefined,
    peers: {},
    path: "/r/etc/a",
  };

  test("the instance's values, the paths, and from bootlace's own environment only PATH, HOME, locale and TZ", () => {
    const own = { PATH: "/p", HOME: "/root", LANG: "C.UTF-8", AWS_SECRET_ACCESS_KEY: "s", NOTIFY_SOCKET: "/n", X: "1" };
    expect(commandEnv({ ...base, staged: "/r/etc/.a.bootlace-0" }, own)).toEqual({
      env: {
        PATH: "/p",
        HOME: "/root",
        LANG: "C.UTF-8",
        BOOTLACE_PATH: "/r/etc/a",
        BOOTLACE_STAGED: "/r/etc/.a.bootlace-0",
        BOOTLACE_INSTANCE_ID: "i-0123456789abcdef0",
        BOOTLACE_REGION: "us-east-1",
        BOOTLACE_AZ: "us-east-1a",
        BOOTLACE_PRIVATE_IPV4: "10.0.1.5",
        BOOTLACE_PUBLIC_IPV4: "203.0.113.7",
        BOOTLACE_ELASTIC_IP: "",
        BOOTLACE_PUBLIC_DNS: "ec2-203-0-113-7.compute-1.amazonaws.com",
        BOOTLACE_MAC: "02:00:00:00:00:01",
        BOOTLACE_HOSTNAME: "ip-10-0-1-5.ec2.internal",
        BOOTLACE_VPC_ID: "vpc-0abc",
        BOOTLACE_SUBNET_ID: "subnet-0abc",
      },
      leftOut: [],
    });
  });

  test("PATH has a default; on_change has no BOOTLACE_STAGED", () => {
    const { env } = commandEnv(base, {});
    expect(env.PATH).toBe(DEFAULT_PATH);
    expect(env).not.toHaveProperty("BOOTLACE_STAGED");
  });

  test("tags: BOOTLACE_TAG_ and the key in upper case, other characters as _; keys that collide are all left out", () => {
    const tags = {
      Env: "prod",
      "aws:autoscaling:groupName": "web-asg",
      "Db Name": "$(touch pwned)",
      "a-b": "1",
      "A.B": "2",
      Prüfung: "ü",
      Bad: "x\0y",
    };
    const { env, leftOut } = commandEnv({ ...base, tags }, {});
    const tagVars = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith("BOOTLACE_TAG_")));
    expect(tagVars).toEqual({
      BOOTLACE_TAG_ENV: "prod",
      BOOTLACE_TAG_AWS_AUTOSCALING_GROUPNAME: "web-asg",
      BOOTLACE_TAG_DB_NAME: "$(touch pwned)",
      BOOTLACE_TAG_PR_FUNG: "ü",
    });
    expect(leftOut).toEqual([
      'BOOTLACE_TAG_A_B not set: the tags "A.B", "a-b" all map to it',
      'BOOTLACE_TAG_BAD not set: this instance\'s tag "Bad" holds a NUL character',
    ]);
  });

  test("tags that could not be read: no BOOTLACE_TAG_*", () => {
    const { env } = commandEnv({ ...base, tags: undefined }, {});
    expect(Object.keys(env).filter((k) => k.startsWith("BOOTLACE_TAG_"))).toEqual([]);
  });

  test("peers: the addresses of each set, space-separated; one that is not IPv4 is left out, said", () => {
    const p = (id: string, ip: string) => ({ id, ip, name: "", az: "", tags: {} });
    const peers = { db: [p("i-1", "10.0.0.1"), p("i-2", "10.0.0.2; touch pwned"), p("i-3", "10.0.0.3")], web: [] };
    const { env, leftOut } = commandEnv({ ...base, peers }, {});
    expect(env.BOOTLACE_PEERS_DB).toBe("10.0.0.1 10.0.0.3");
    expect(env.BOOTLACE_PEERS_WEB).toBe("");
    expect(leftOut).toEqual(['peer i-2 left out of BOOTLACE_PEERS_DB: "10.0.0.2; touch pwned" is not IPv4']);
  });
});
