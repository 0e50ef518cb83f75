// The writer killed (SIGKILL) at random moments, over many rewrites of a large file, never leaves it torn or missing,
// and never leaves a torn backup. Bounded in rounds and in time; the random moments come from a seeded generator, so
// a failure can be replayed.
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";
import { claimedVersion, versionContent } from "../support/crash-writer";

jest.setTimeout(120_000);

const ROUNDS = 60;
const TIME_BUDGET_MS = 45_000;

let work: string;
let helper: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "bootlace-crash-"));
  helper = join(work, "crash-writer.js");
  await build({
    entryPoints: [join(__dirname, "..", "support", "crash-writer.ts")],
    bundle: true,
    platform: "node",
    target: "node18",
    format: "cjs",
    outfile: helper,
    logLevel: "warning",
  });
});

afterAll(() => rm(work, { recursive: true, force: true }));

/** mulberry32: small, seeded, good enough to spread kill moments. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Starts the writer at version `first` and SIGKILLs it `afterMs` after it says it is ready. */
function killedWriter(path: string, first: number, afterMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [helper, path, String(first)], { stdio: ["ignore", "pipe", "inherit"] });
    child.once("error", reject);
    child.stdout.once("data", () => setTimeout(() => child.kill("SIGKILL"), afterMs));
    child.once("exit", (_code, signal) =>
      signal === "SIGKILL" ? resolve() : reject(new Error(`the writer exited by itself (${String(signal)})`)),
    );
  });
}

/** The file exists and is exactly one whole version. */
async function wholeVersion(path: string): Promise<number> {
  const text = await readFile(path, "utf8");
  const v = claimedVersion(text);
  expect(v).toBeDefined();
  expect(text === versionContent(v!)).toBe(true);
  return v!;
}

it("never leaves a torn or missing file, whenever the writer is killed", async () => {
  const seed = Number(process.env.CRASH_SEED ?? Date.now() % 100_000);
  const random = seeded(seed);
  const path = join(work, "target.conf");
  await writeFile(path, versionContent(0));
  const started = Date.now();
  let rounds = 0;
  let version = 0;
  const seen = new Set<number>();

  while (rounds < ROUNDS && Date.now() - started < TIME_BUDGET_MS) {
    // Mostly very early (inside the first rewrite), sometimes later (after several).
    const afterMs = random() < 0.5 ? random() * 8 : random() * 120;
    await killedWriter(path, version + 1, afterMs);
    rounds += 1;

    version = await wholeVersion(path);
    seen.add(version);
    if ((await readdir(work)).includes("target.conf.bootlace-bak")) await wholeVersion(`${path}.bootlace-bak`);
  }

  // Honest about what was exercised: enough kills, and kills that landed after some rewrites had completed.
  expect({ seed, rounds: rounds >= 20 }).toEqual({ seed, rounds: true });
  expect(seen.size).toBeGreaterThan(1);
  // Leftovers of killed writers are removed by the next writer: at most the last one's remain.
  const leftovers = (await readdir(work)).filter((n) => n.startsWith(".target.conf.bootlace-"));
  expect(leftovers.length).toBeLessThanOrEqual(2);
});
