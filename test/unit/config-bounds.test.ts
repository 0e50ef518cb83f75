// Each limit of bounds.ts at its edge, in-process: the input at the limit is read, one step over it is refused with
// a ConfigError naming the source and the limit.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { limits, yamlOverLimits } from "../../agent/config/bounds";
import { loadConfig } from "../../agent/config/load";
import { parseYamlSource } from "../../agent/config/sources";
import { parseUserData } from "../../agent/config/userdata";
import { ConfigErrors } from "../../agent/core/errors";

function refusal(raw: Buffer | string): string[] {
  try {
    parseUserData(Buffer.from(raw));
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigErrors);
    return (error as ConfigErrors).errors.map((e) => e.message);
  }
  throw new Error("expected the user-data to be refused");
}

const bootlace = (yaml: string): string => `#bootlace\n${yaml}\n`;

/** A multipart of `parts` parts, each of `content`. */
function multipart(parts: string[], boundary = "b"): string {
  return `Content-Type: multipart/mixed; boundary=${boundary}\nMIME-Version: 1.0\n\n${parts
    .map((p) => `--${boundary}\n${p}\n`)
    .join("")}--${boundary}--\n`;
}

function nestedMime(depth: number, inner: string): string {
  let s = inner;
  for (let i = depth; i > 0; i--) s = `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n${s}\n--b${i}--\n`;
  return `MIME-Version: 1.0\n${s}`;
}

describe("raw user-data", () => {
  test("16 KiB is read; one byte more is refused, naming EC2's limit", () => {
    const at = "#bootlace\ndns:\n  wait: none\n#".padEnd(limits.userDataBytes, "x");
    expect(parseUserData(Buffer.from(at)).documents).toHaveLength(1);
    expect(refusal(`${at}x`)).toEqual([expect.stringMatching(/^user-data: 16385 bytes, over EC2's limit of 16 KiB/)]);
  });
});

describe("gzip", () => {
  test("1 MiB of decompressed user-data is read; more is refused", () => {
    const at = gzipSync("#bootlace\ndns:\n  wait: none\n#".padEnd(limits.inflatedBytes, "x"));
    expect(parseUserData(at).documents).toHaveLength(1);
    const over = gzipSync("#bootlace\n#".padEnd(limits.inflatedBytes + 1, "x"));
    expect(refusal(over)).toEqual([
      expect.stringMatching(/^user-data: gzip data decompresses to more than the 1 MiB all of user-data may/),
    ]);
  });

  test("the limit is shared by every part: two parts of 600 KiB each are too much together", () => {
    const part = gzipSync("#bootlace\n#".padEnd(600 * 1024, "x")).toString("base64");
    const raw = multipart(
      [1, 2].map(() => `Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n${part}`),
    );
    expect(refusal(raw)).toEqual([expect.stringMatching(/^user-data part 2 \(application\/gzip\): gzip data/)]);
  });

  test("a write_files entry's gzip content spends the same budget", () => {
    const content = gzipSync("#".padEnd(limits.inflatedBytes + 1, "x")).toString("base64");
    const raw = `#cloud-config\nwrite_files:\n- path: /etc/bootlace/bootlace.yaml\n  encoding: gz+b64\n  content: ${content}\n`;
    const files = parseUserData(Buffer.from(raw)).files;
    expect(files[0]?.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/write_files\.0\.encoding: gz\+b64 content decompresses to more than the 1 MiB/),
    ]);
  });

  test("a gzip part inside gzip user-data is read (2 layers); a third layer is refused", () => {
    const inner = bootlace("dns:\n  wait: none");
    const part = (bytes: Buffer) =>
      multipart([`Content-Type: application/gzip\nContent-Transfer-Encoding: base64\n\n${bytes.toString("base64")}`]);
    expect(parseUserData(gzipSync(part(gzipSync(inner)))).documents).toHaveLength(1);
    expect(refusal(gzipSync(part(gzipSync(gzipSync(inner)))))).toEqual([
      expect.stringMatching(/^user-data part 1 \(application\/gzip\): gzip inside gzip more than 2 deep/),
    ]);
  });
});

describe("MIME", () => {
  test("multipart 4 deep is read; 5 deep is refused before it is split", () => {
    const inner = `Content-Type: text/x-bootlace\n\ndns:\n  wait: none`;
    expect(parseUserData(Buffer.from(nestedMime(4, inner))).documents).toHaveLength(1);
    expect(refusal(nestedMime(5, inner))).toEqual([
      expect.stringMatching(/^user-data part 1\.1\.1\.1 \(multipart\/mixed\): multipart nested more than 4 deep/),
    ]);
  });

  test("an archive counts as a multipart", () => {
    const archive = `#cloud-config-archive\n- type: text/x-bootlace\n  content: "dns: {wait: none}"\n`;
    expect(parseUserData(Buffer.from(nestedMime(3, `Content-Type: text/plain\n\n${archive}`))).documents).toHaveLength(
      1,
    );
    expect(refusal(nestedMime(4, `Content-Type: text/plain\n\n${archive}`))).toEqual([
      expect.stringMatching(/\(text\/plain, #cloud-config-archive\): parts nested more than 4 deep/),
    ]);
  });

  test("100 parts are read; the 101st is refused, once", () => {
    const parts = (n: number) => Array.from({ length: n }, (_, i) => `Content-Type: text/x-bootlace\n\nx${i}: 1`);
    expect(parseUserData(Buffer.from(multipart(parts(100)))).documents).toHaveLength(100);
    expect(refusal(multipart(parts(150)))).toEqual([
      expect.stringMatching(/^user-data: more than 100 parts in one user-data/),
    ]);
  });

  test("a boundary full of pattern characters is text, not a pattern", () => {
    const raw = multipart([`Content-Type: text/x-bootlace\n\ndns:\n  wait: none`], "(a+)+$[.*");
    expect(parseUserData(Buffer.from(raw)).documents).toHaveLength(1);
  });
});

describe("YAML", () => {
  const seq = (n: number) => `a: [${Array<string>(n).fill("0").join(", ")}]`;

  test("5,000 nodes are read; more are refused by the lexer, before parsing", () => {
    // `a`, its ':' and the list are 3 nodes.
    expect(yamlOverLimits(seq(limits.yamlNodes - 3))).toBeUndefined();
    expect(yamlOverLimits(seq(limits.yamlNodes - 2))).toEqual({
      why: "more than 5000 YAML nodes in one document (the limit)",
      line: 1,
    });
    expect(refusal(gzipSync(bootlace(seq(100_000))))).toEqual([
      expect.stringMatching(/^user-data \(#bootlace\), line 2: more than 5000 YAML nodes in one document/),
    ]);
  });

  test("10,000 nodes over one user-data: three documents of 4,000 are too many together", () => {
    const part = `Content-Type: text/x-bootlace\n\n${seq(4000)}`;
    expect(refusal(gzipSync(multipart([part, part, part])))).toEqual([
      expect.stringMatching(/^user-data part 3 \(text\/x-bootlace\), line 1: more than 10000 YAML nodes in this/),
    ]);
  });

  test.each([
    ["block lists", (n: number) => `a:\n${"- ".repeat(n)}1`],
    ["flow lists", (n: number) => `a: ${"[".repeat(n)}${"]".repeat(n)}`],
    ["block maps", (n: number) => `${Array.from({ length: n + 1 }, (_, i) => `${" ".repeat(i)}k:`).join("\n")} 1`],
  ])("%s nested 64 deep are read; deeper are refused before the composer recurses", (_, deep) => {
    // The top-level map is one level: 63 more make 64.
    expect(parseYamlSource("x.yaml", deep(63)).errors).toEqual([]);
    const errors = parseYamlSource("x.yaml", deep(65)).errors.map((e) => e.message);
    expect(errors).toEqual([expect.stringMatching(/^x\.yaml, line \d+: YAML collections nested more than 64 deep/)]);
  });

  test("8,000 deep (what once aborted the process in the yaml library) is refused", () => {
    expect(parseYamlSource("x.yaml", `a:\n${"- ".repeat(4000)}1`).errors.map((e) => e.message)).toEqual([
      "x.yaml, line 2: YAML collections nested more than 64 deep (the limit); bootlace refuses input over its limits " +
        '(docs/configuration.md, "Limits")',
    ]);
    expect(parseYamlSource("x.yaml", `a: ${"[".repeat(8000)}`).errors[0]?.message).toMatch(/nested more than 64/);
  });

  test("an alias bomb stops at 100 aliases; an alias inside its own anchor stops too", () => {
    let laughs = "l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n";
    for (let i = 1; i < 10; i++)
      laughs += `l${i}: &l${i} [${Array<string>(10)
        .fill(`*l${i - 1}`)
        .join(", ")}]\n`;
    expect(parseYamlSource("x.yaml", laughs).errors.map((e) => e.message)).toEqual([
      "x.yaml, line 1: more than 100 YAML aliases (the limit)",
    ]);
    expect(parseYamlSource("x.yaml", "a: &a [1, *a]").errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/^x\.yaml, line 1: (more than|YAML collections nested)/),
    ]);
    // A few aliases are fine.
    expect(parseYamlSource("x.yaml", "a: &a {b: 1}\nc: *a").errors).toEqual([]);
  });

  test("a value in a BOOTLACE_SET_ line over the limits stays text, unparsed", () => {
    const value = "[".repeat(5000);
    expect(parseUserData(Buffer.from(`#!/bin/sh\nBOOTLACE_SET_a=${value}\n`)).sets[0]?.value).toBe(value);
  });
});

describe("the rest", () => {
  test("a jinja template of 1,000 expressions is read; more are refused", () => {
    const template = (n: number) => `## template: jinja\n#cloud-config\nruncmd: [${"'{{ a }}',".repeat(n)}]\n`;
    expect(parseUserData(Buffer.from(template(1000))).documents).toEqual([]);
    expect(refusal(template(1001))).toEqual([
      expect.stringMatching(/^user-data \(## template: jinja\), line 3: more than 1000 \{\{ … \}\} expressions/),
    ]);
  });

  test("a BOOTLACE_SET_ path of 32 keys is read; 33 are refused", () => {
    const line = (n: number) => `#!/bin/sh\nBOOTLACE_SET_${Array<string>(n).fill("a").join("__")}=1\n`;
    expect(parseUserData(Buffer.from(line(32))).sets).toHaveLength(1);
    expect(refusal(line(33))).toEqual([
      expect.stringMatching(/^user-data \(shell script\), line 2: more than 32 keys in the path/),
    ]);
  });

  test("a baked file over 1 MiB is refused by its size, unread; a FIFO is refused, not waited on", async () => {
    const root = mkdtempSync(join(tmpdir(), "bootlace-bounds-"));
    mkdirSync(join(root, "etc/bootlace/conf.d"), { recursive: true });
    writeFileSync(join(root, "etc/bootlace/bootlace.yaml"), "#".padEnd(limits.configFileBytes + 1, "x"));
    writeFileSync(join(root, "etc/bootlace/conf.d/10-ok.yaml"), "#".padEnd(limits.configFileBytes, "x"));
    expect(spawnSync("mkfifo", [join(root, "etc/bootlace/conf.d/20-fifo.yaml")]).status).toBe(0);
    const errors = await loadConfig({ root }).then(
      () => [],
      (error: ConfigErrors) => error.errors.map((e) => e.message),
    );
    expect(errors).toEqual([
      `${join(root, "etc/bootlace/bootlace.yaml")}: 1048577 bytes, over the limit of 1 MiB for a configuration file; ` +
        `bootlace refuses input over its limits (docs/configuration.md, "Limits")`,
      `${join(root, "etc/bootlace/conf.d/20-fifo.yaml")}: cannot read: it is not a regular file`,
    ]);
  });
});
