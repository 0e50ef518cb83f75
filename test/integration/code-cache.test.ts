// The bundle's compiled-code cache (agent/launcher/): used when it belongs to this very bundle, never required, and
// never trusted when it is not this build's, not whole, or not the user's own.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE, BUNDLE_NODE } from "../harness/run-bundle";

jest.setTimeout(60_000);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The launcher's BOOTLACE_CACHE_TRACE lines: "hit …", "miss …", "written …", "not written: …". */
  trace: string[];
}

const tmp = () => mkdtempSync(join(tmpdir(), "bootlace-cache-test-"));

/** A command that reads the agent (unlike --help, which the launcher answers): status of a root that never ran. */
const status = ["status", "--root", tmp()];

function run(bundle: string, cacheDir: string, args = status): Run {
  const r = spawnSync(BUNDLE_NODE, [bundle, ...args], {
    encoding: "utf8",
    env: { PATH: process.env.PATH, HOME: tmp(), BOOTLACE_CACHE_DIR: cacheDir, BOOTLACE_CACHE_TRACE: "1" },
  });
  const trace = r.stderr
    .split("\n")
    .filter((l) => l.startsWith("code cache: "))
    .map((l) => l.slice("code cache: ".length));
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, trace };
}

const outcome = (r: Run) => r.trace[0]?.split(" ")[0];
const caches = (dir: string) => readdirSync(dir).filter((f) => f.endsWith(".v8cache"));

/** A copy of the bundle of its own, which a test may change. */
function bundleCopy(): string {
  const file = join(tmp(), "bootlace.js");
  copyFileSync(BUNDLE, file);
  return file;
}

let plain: Run;
beforeAll(() => {
  plain = run(BUNDLE, "");
});

test("without a cache directory the bundle runs as ever, and writes nothing", () => {
  expect(plain.code).toBe(0);
  expect(plain.stdout).toBe("no run recorded yet\n");
  expect(outcome(plain)).toBe("off");
});

test("--help, --version and a refused command line are answered without reading the agent: no cache", () => {
  const dir = tmp();
  for (const [args, code] of [
    [["--help"], 0],
    [["validate", "--help"], 0],
    [["--version"], 0],
    [["launch"], 2],
  ] as const) {
    const r = run(BUNDLE, dir, [...args]);
    expect(r.code).toBe(code);
    expect(r.trace).toEqual([]);
  }
  expect(caches(dir)).toEqual([]);
});

test("the first run makes the cache, the next ones use it, with the same output", () => {
  const dir = tmp();
  const first = run(BUNDLE, dir);
  expect(outcome(first)).toBe("miss");
  expect(first.trace.some((l) => l.startsWith("written "))).toBe(true);
  expect(caches(dir)).toHaveLength(1);

  const second = run(BUNDLE, dir);
  expect(outcome(second)).toBe("hit");
  expect(second.trace.some((l) => l.startsWith("written "))).toBe(false);
  expect([first.code, second.code]).toEqual([0, 0]);
  expect(second.stdout).toBe(plain.stdout);
});

test("each command has its cache: validate does not use --help's", () => {
  const dir = tmp();
  run(BUNDLE, dir);
  const config = join(tmp(), "bootlace.yaml");
  writeFileSync(config, "files: []\n");
  const validate = run(BUNDLE, dir, ["validate", config]);
  expect(validate.code).toBe(0);
  expect(outcome(validate)).toBe("miss");
  expect(caches(dir)).toHaveLength(2);
  expect(outcome(run(BUNDLE, dir, ["validate", config]))).toBe("hit");
});

test("a changed bundle never uses the old bundle's cache, and replaces it", () => {
  const dir = tmp();
  const bundle = bundleCopy();
  expect(outcome(run(bundle, dir))).toBe("miss");
  const [old] = caches(dir);

  // Same length on purpose: V8 itself checks only the source's length, so only the key can tell these apart.
  const text = readFileSync(bundle, "latin1");
  const changed = text.replace("no run recorded yet", "NO RUN recorded yet");
  expect(changed).not.toBe(text);
  expect(changed.length).toBe(text.length);
  writeFileSync(bundle, changed, "latin1");

  const after = run(bundle, dir);
  expect(outcome(after)).toBe("miss");
  expect(after.stdout).toBe("NO RUN recorded yet\n");
  expect(caches(dir)).toHaveLength(1);
  expect(caches(dir)).not.toContain(old);
  expect(outcome(run(bundle, dir))).toBe("hit");
});

test.each([
  ["garbage", (_: Buffer) => Buffer.from("not a code cache at all\n".repeat(100))],
  ["a truncated cache", (b: Buffer) => b.subarray(0, Math.floor(b.length / 2))],
  ["a cache with flipped bytes", (b: Buffer) => Buffer.from(b.map((x, i) => (i > 64 && i % 97 === 0 ? ~x & 0xff : x)))],
  ["an empty file", (_: Buffer) => Buffer.alloc(0)],
])("%s in the cache's place is refused before V8 sees it: the run succeeds and writes a good one", (_, spoil) => {
  const dir = tmp();
  run(BUNDLE, dir);
  const [name] = caches(dir);
  const file = join(dir, name!);
  writeFileSync(file, spoil(readFileSync(file)));

  const spoiled = run(BUNDLE, dir);
  expect(spoiled.code).toBe(0);
  expect(spoiled.stdout).toBe(plain.stdout);
  expect(outcome(spoiled)).toBe("rejected");
  expect(spoiled.trace.some((l) => l.startsWith("written "))).toBe(true);
  expect(outcome(run(BUNDLE, dir))).toBe("hit");
});

test("a cache directory that cannot be made or written costs nothing but time", () => {
  const notADir = join(tmp(), "a-file");
  writeFileSync(notADir, "");
  const r = run(BUNDLE, join(notADir, "cache"));
  expect(r.code).toBe(0);
  expect(r.stdout).toBe(plain.stdout);
  expect(r.trace.some((l) => l.startsWith("not written: "))).toBe(true);
});

test("a directory others may write to is not trusted: its cache is neither read nor written", () => {
  const dir = tmp();
  run(BUNDLE, dir);
  expect(outcome(run(BUNDLE, dir))).toBe("hit");
  chmodSync(dir, 0o777);
  const r = run(BUNDLE, dir);
  expect(r.code).toBe(0);
  expect(outcome(r)).toBe("miss");
  expect(r.trace.some((l) => l.startsWith("written "))).toBe(false);
});

test("a failed command leaves no cache behind", () => {
  const dir = tmp();
  const r = run(BUNDLE, dir, ["validate", join(dir, "no-such-file.yaml")]);
  expect(r.code).not.toBe(0);
  expect(caches(dir)).toEqual([]);
});
