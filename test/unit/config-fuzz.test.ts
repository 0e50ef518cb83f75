// Generated user-data, every form bootlace reads (and some it only recognises), nested, compressed, truncated and
// mutated, through the configuration loader in-process: each either loads or is refused with ConfigErrors whose every
// issue names its source; never another exception, never a stack trace, never past the limits in bounds.ts.
//
// A hand PRNG (mulberry32) rather than fast-check: fast-check is not a dependency, and what is needed here is a
// deterministic stream of choices, not shrinking (a failure prints its seed, index and input to replay).
// BOOTLACE_FUZZ_COUNT (default 100,000: CI runs that) and BOOTLACE_FUZZ_SEED change the run; BOOTLACE_FUZZ_SLOWEST=FILE
// keeps the slowest document.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { loadConfig } from "../../agent/config/load";
import { validateFile } from "../../agent/config/validate";
import { ConfigError, ConfigErrors } from "../../agent/core/errors";
import { seeded } from "../support/seeded";

const COUNT = Number(process.env.BOOTLACE_FUZZ_COUNT ?? 100_000);
const SEED = Number(process.env.BOOTLACE_FUZZ_SEED ?? 0x600d5eed);

class Gen {
  constructor(readonly random: () => number) {}
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

// Pieces of real configuration, valid and not, so that many documents get as far as the schema.
const CONFIG_SNIPPETS = [
  "profile: web",
  "version: 1",
  "dns:\n  wait: none",
  "dns:\n  records:\n    - name: '{{instance.id}}.example.com'\n      zone: example.com\n      ttl: 30",
  "elastic_ip:\n  pool:\n    tags:\n      Pool: web",
  "load_balancer:\n  target_groups: [arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/a/1]",
  "watch:\n  interval: 90",
  "files:\n  - path: /etc/app.conf\n    content: 'x={{instance.id}}'",
  "files:\n  - path: /etc/hosts\n    replace:\n      - match: '^a'\n        with: b",
  "peers:\n  db:\n    tags:\n      Role: db",
  "profiles:\n  web:\n    dns:\n      wait: none",
  "nope: 1",
  "dns: [1, 2]",
  "a: &x [1, 2]\nb: *x",
  "a: &a [x, x]\nb: &b [*a, *a]\nc: [*b, *b]",
];
const WORDS = ["a", "b", "bootlace", "dns", "files", "~", "null", "1", "-1", "true", "'q'", '"d"', "0x1f", "{}", "[]"];

/** Random YAML: block and flow collections, anchors and aliases, scalars of every quoting, at some depth. */
function yaml(g: Gen, depth: number, indent = ""): string {
  if (depth <= 0 || g.chance(0.3)) return g.pick(WORDS);
  switch (g.int(4)) {
    case 0:
      return `[${Array.from({ length: g.int(4) }, () => yaml(g, depth - 1)).join(", ")}]`;
    case 1:
      return `{${Array.from({ length: g.int(3) }, () => `${g.pick(WORDS)}: ${yaml(g, depth - 1)}`).join(", ")}}`;
    case 2:
      return Array.from({ length: 1 + g.int(3) }, () => `\n${indent}- ${yaml(g, depth - 1, `${indent}  `)}`).join("");
    default: {
      const anchor = g.chance(0.2) ? `&${g.pick(["a", "b"])} ` : "";
      const alias = g.chance(0.2) ? ` *${g.pick(["a", "b"])}` : "";
      const entries = Array.from(
        { length: 1 + g.int(3) },
        () => `\n${indent}${g.pick(WORDS)}:${alias || ` ${anchor}${yaml(g, depth - 1, `${indent}  `)}`}`,
      );
      return entries.join("");
    }
  }
}

function bootlaceYaml(g: Gen): string {
  const parts = Array.from({ length: 1 + g.int(3) }, () => g.pick(CONFIG_SNIPPETS));
  if (g.chance(0.3)) parts.push(`x${g.int(9)}:${yaml(g, 1 + g.int(5))}`);
  return parts.join("\n");
}

const indented = (text: string, by: string): string => text.replace(/^/gm, by);
const b64 = (text: string | Buffer): string => Buffer.from(text).toString("base64");

/** A document in one of the forms, possibly holding others (depth bounds the generator, not the reader). */
function userData(g: Gen, depth: number): Buffer {
  const form = g.int(depth > 0 ? 13 : 9);
  switch (form) {
    case 0:
      return Buffer.from(`#bootlace\n${bootlaceYaml(g)}\n`);
    case 1:
      return Buffer.from(`#cloud-config\npackages: [nginx]\nbootlace:\n${indented(bootlaceYaml(g), "  ")}\n`);
    case 2: {
      const content = bootlaceYaml(g);
      const encoding = g.pick(["", "b64", "gzip", "gz+b64", "bogus"]);
      const encoded =
        encoding === "b64"
          ? b64(content)
          : encoding === "gz+b64"
            ? b64(gzipSync(content))
            : encoding === "gzip"
              ? gzipSync(content).toString("latin1")
              : content;
      const path = g.pick(["/etc/bootlace/bootlace.yaml", "/etc/bootlace/conf.d/10-x.yaml", "/etc/bootlace/x.txt"]);
      const enc = encoding ? `  encoding: ${encoding}\n` : "";
      return Buffer.from(
        `#cloud-config\nwrite_files:\n- path: ${path}\n${enc}  content: |\n${indented(encoded, "    ")}\n`,
      );
    }
    case 3: {
      const lines = [
        "#!/bin/sh",
        `BOOTLACE_PROFILE=${g.pick(["web", "'db'", '"x y"', "$HOME", ""])}`,
        `export BOOTLACE_SET_${g.pick(["dns__wait", "watch__interval", "a____b", "", "x__".repeat(40)])}=${g.pick(WORDS)}`,
        "echo done",
      ];
      return Buffer.from(lines.join("\n"));
    }
    case 4:
      return Buffer.from(
        `## template: jinja\n${g.pick(["#cloud-config", "#!/bin/sh"])}\n` +
          g.pick([
            "bootlace:\n  profile: {{ v1.region }}\n",
            "bootlace:\n  dns: {% raw %}{{instance.id}}{% endraw %}\n",
            "BOOTLACE_PROFILE={{ ds.meta_data.x }}\n",
            "{% if x %}bootlace: {}{% endif %}\n",
            "{# comment\n",
            `runcmd: [${"'{{a}}',".repeat(g.int(1200))}]\n`,
          ]),
      );
    case 5:
      return Buffer.from(
        g.pick(["#include\nhttp://127.0.0.1/x", "#cloud-boothook\necho", "#part-handler\n", "#cloud-config-jsonp\n[]"]),
      );
    case 6:
      return Buffer.from(Array.from({ length: g.int(64) }, () => g.int(256)));
    case 7:
      return Buffer.from(`${bootlaceYaml(g)}\n`);
    case 8:
      return Buffer.from(`#cloud-config\n${g.pick(["runcmd", "bootlace"])}:${yaml(g, 2 + g.int(6))}\n`);
    case 9:
      return gzipSync(userData(g, depth - 1));
    case 10: {
      const entries = Array.from({ length: 1 + g.int(3) }, () => ({
        content: userData(g, depth - 1).toString("utf8"),
        ...(g.chance(0.5) && { type: g.pick(["text/x-bootlace", "text/cloud-config", "text/x-shellscript"]) }),
      }));
      return Buffer.from(`#cloud-config-archive\n${JSON.stringify(entries)}\n`);
    }
    default:
      return mime(g, depth);
  }
}

const TYPES = [
  "text/x-bootlace",
  "text/cloud-config",
  "text/x-shellscript",
  "text/jinja2",
  "text/plain",
  "application/gzip",
  "text/cloud-config-archive",
  "text/x-not-multipart",
];

function mime(g: Gen, depth: number): Buffer {
  const boundary = g.pick(["b", "==b==", "x.y(z)", "a+b*c?", `${g.int(1e6)}`]);
  const parts = Array.from({ length: 1 + g.int(4) }, () => {
    const body = g.chance(0.2) && depth > 1 ? mime(g, depth - 1) : userData(g, depth - 1);
    const encoding = g.pick(["", "base64", "quoted-printable", "7bit"]);
    const type = g.pick(TYPES);
    const payload = encoding === "base64" ? b64(type === "application/gzip" ? gzipSync(body) : body) : body.toString();
    const charset = g.chance(0.2) ? `; charset=${g.pick(["utf-8", "latin1", "utf-16le", "nope"])}` : "";
    const header = body.subarray(0, 40).toString().startsWith("Content-Type: multipart")
      ? ""
      : `Content-Type: ${type}${charset}\n${encoding ? `Content-Transfer-Encoding: ${encoding}\n` : ""}\n`;
    return `--${boundary}\n${header}${payload}\n`;
  });
  const close = g.chance(0.9) ? `--${boundary}--\n` : "";
  const quoted = g.chance(0.5) ? `"${boundary}"` : boundary;
  return Buffer.from(
    `Content-Type: multipart/mixed; boundary=${quoted}\nMIME-Version: 1.0\n\n${parts.join("")}${close}`,
    "latin1",
  );
}

/** Truncated, bytes flipped, inserted or repeated, two documents spliced: what a broken upload looks like. */
function mutate(g: Gen, raw: Buffer, other: () => Buffer): Buffer {
  let bytes = Buffer.from(raw);
  for (let n = g.int(4); n > 0; n--) {
    switch (g.int(5)) {
      case 0:
        bytes = bytes.subarray(0, g.int(bytes.length + 1));
        break;
      case 1:
        if (bytes.length > 0) bytes[g.int(bytes.length)] = g.int(256);
        break;
      case 2: {
        const at = g.int(bytes.length + 1);
        const insert = Buffer.from(g.pick(["\n", "\r\n", ":", "- ", "[", "{{", "{%", "&a ", "*a", "\x00", "--b\n"]));
        bytes = Buffer.concat([bytes.subarray(0, at), insert, bytes.subarray(at)]);
        break;
      }
      case 3: {
        const at = g.int(bytes.length + 1);
        const piece = bytes.subarray(at, at + g.int(32));
        bytes = Buffer.concat([bytes.subarray(0, at), ...Array<Buffer>(1 + g.int(8)).fill(piece), bytes.subarray(at)]);
        break;
      }
      default: {
        const b = other();
        bytes = Buffer.concat([bytes.subarray(0, g.int(bytes.length + 1)), b.subarray(g.int(b.length + 1))]);
      }
    }
  }
  return bytes;
}

/** Documents made to reach the limits: big, deep, aliased, gzip in gzip; rare, since each costs more. */
function hostile(g: Gen): Buffer {
  const n = 1000 + g.int(6000);
  switch (g.int(7)) {
    case 0:
      return gzipSync(`#bootlace\na: [${"0,".repeat(n)}0]\n`);
    case 1:
      return Buffer.from(`#bootlace\na: ${"- ".repeat(40 + g.int(60))}1\n`);
    case 2:
      return Buffer.from(`#bootlace\na: ${"[".repeat(50 + g.int(100))}\n`);
    case 3: {
      let s = "#bootlace\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
      for (let i = 1; i < 8; i++)
        s += `a${i}: &a${i} [${Array<string>(10)
          .fill(`*a${i - 1}`)
          .join(", ")}]\n`;
      return Buffer.from(s);
    }
    case 4: {
      let data: Buffer = Buffer.from(`#bootlace\n${" ".repeat(g.int(3 * 1024 * 1024))}`);
      for (let i = g.int(4); i >= 0; i--) data = gzipSync(data);
      return data;
    }
    case 5: {
      let s = "#cloud-config\n";
      for (let i = 0; i < 3 + g.int(8); i++) {
        s = `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n${s}\n--b${i}--\n`;
      }
      return Buffer.from(`MIME-Version: 1.0\n${s}`);
    }
    default:
      return Buffer.from(`Content-Type: multipart/mixed; boundary=b\n\n${"--b\n\n".repeat(50 + g.int(200))}`);
  }
}

const STACK = /\n\s+at .+[:(]\d+/;

/** What is wrong with the outcome, or undefined when it is a load or a proper refusal. */
function judge(error: unknown): string | undefined {
  const issues = error instanceof ConfigErrors ? error.errors : error instanceof ConfigError ? [error] : undefined;
  if (!issues) return `threw ${(error as Error)?.constructor?.name}: ${String((error as Error)?.stack ?? error)}`;
  if (issues.length === 0) return "refused with no issue";
  for (const issue of issues) {
    if (!(issue instanceof ConfigError)) return `an issue that is no ConfigError: ${String(issue)}`;
    if (!issue.where?.source) return `an issue without a source: ${issue.message}`;
    if (!issue.message.startsWith(issue.where.source)) return `an issue not led by its source: ${issue.message}`;
    if (STACK.test(issue.message)) return `a stack trace in the message: ${issue.message}`;
    if (/\b(RangeError|TypeError|SyntaxError|ReferenceError)\b|Maximum call stack/.test(issue.message)) {
      return `a JavaScript error in the message: ${issue.message}`;
    }
  }
  return undefined;
}

test(`${COUNT} generated user-data documents load or are refused with a source (seed ${SEED})`, async () => {
  const g = new Gen(seeded(SEED));
  const root = mkdtempSync(join(tmpdir(), "bootlace-fuzz-"));
  const failures: string[] = [];
  const outcomes = { loaded: 0, refused: 0 };
  let slowest: { ms: number; index: number; raw: Buffer } = { ms: 0, index: -1, raw: Buffer.alloc(0) };
  let largest = { bytes: 0, index: -1 };
  try {
    for (let index = 0; index < COUNT; index++) {
      let raw = index % 500 === 499 ? hostile(g) : userData(g, 3);
      if (g.chance(0.4)) raw = mutate(g, raw, () => userData(g, 1));
      if (g.chance(0.05)) raw = gzipSync(raw);
      if (raw.length > largest.bytes) largest = { bytes: raw.length, index };
      const started = performance.now();
      let error: unknown;
      try {
        // Every 50th through the whole loader (user-data, baked files under an empty root, the merge); the rest
        // through validate's path, which reads the user-data the same way without touching the disk.
        if (index % 50 === 0) await loadConfig({ root, userData: raw });
        else await validateFile("user-data", raw);
        outcomes.loaded++;
      } catch (e) {
        error = e;
        outcomes.refused++;
      }
      const ms = performance.now() - started;
      if (ms > slowest.ms) slowest = { ms, index, raw };
      const wrong = error === undefined ? undefined : judge(error);
      if (wrong !== undefined && failures.length < 5) {
        failures.push(`#${index} (seed ${SEED}), input base64 ${raw.toString("base64").slice(0, 2000)}: ${wrong}`);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  // To replay the slowest through the bundle (`bootlace validate --user-data FILE`): BOOTLACE_FUZZ_SLOWEST=FILE.
  if (process.env.BOOTLACE_FUZZ_SLOWEST) writeFileSync(process.env.BOOTLACE_FUZZ_SLOWEST, slowest.raw);
  const rss = Math.round(process.memoryUsage().rss / 1024 / 1024);
  process.stdout.write(
    `config fuzz: seed ${SEED}, ${COUNT} documents, ${outcomes.loaded} loaded, ${outcomes.refused} refused; ` +
      `slowest #${slowest.index} ${slowest.ms.toFixed(1)} ms (${slowest.raw.length} bytes, ` +
      `${JSON.stringify(slowest.raw.subarray(0, 80).toString("latin1"))}…); largest #${largest.index} ` +
      `${largest.bytes} bytes; rss now ${rss} MiB\n`,
  );
  expect(failures).toEqual([]);
  // The generator reaches both outcomes (a fuzz that only ever refuses would test nothing).
  expect(outcomes.loaded).toBeGreaterThan(COUNT / 100);
  expect(outcomes.refused).toBeGreaterThan(COUNT / 100);
}, 600_000);
