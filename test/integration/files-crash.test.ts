// The writer killed (SIGKILL) at random moments, over many rewrites of a large file, never leaves it torn or missing,
// and never leaves a torn backup. Bounded in rounds and in time; the random moments come from a seeded generator, so
// a failure can be replayed.
import { spawn } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { childScript } from "../support/child-script";
import { seeded } from "../support/seeded";
import { claimedVersion, versionContent } from "../support/crash-writer";

jest.setTimeout(120_000);

const ROUNDS = 60;
const TIME_BUDGET_MS = 45_000;

let work: string;
let helper: string;
let remove: () => Promise<void>;

beforeAll(async () => {
  ({ work, script: helper, remove } = await childScript("crash-writer", "bootlace-crash-"));
});

afterAll(() => remove());

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
