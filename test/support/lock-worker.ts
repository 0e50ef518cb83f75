// A child process for the lock stress test: agents in one process take the run lock in turn, round after round, and
// log when they enter and leave the section it guards (appends are atomic, so the log's order is the real order).
// Some sections end with the process killing itself while it holds the lock, as a crash or power loss would: at
// random, and at a given round when asked.
import { appendFileSync } from "node:fs";
import { systemClock } from "../../agent/core/clock";
import { acquireLock } from "../../agent/root/lock";

/** mulberry32: small, seeded. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const [lock, log, rounds, agents, crashRate, seed, crashAt] = process.argv.slice(2);
  if (!lock || !log || !rounds || !agents || !crashRate || !seed || !crashAt) {
    throw new Error("usage: lock-worker LOCK LOG ROUNDS AGENTS CRASH-RATE SEED CRASH-AT (agent 0's round, or -1)");
  }
  const random = seeded(Number(seed));
  const deadline = { at: Date.now() + 60_000, signal: new AbortController().signal };
  await Promise.all(
    Array.from({ length: Number(agents) }, async (_, agent) => {
      for (let n = 0; n < Number(rounds); n++) {
        const held = await acquireLock(lock, systemClock, deadline, { pollMs: 4 });
        const id = `${process.pid}.${agent}.${n}`;
        appendFileSync(log, `+ ${id}\n`);
        await sleep(random() * 3);
        if (random() < Number(crashRate) || (agent === 0 && n === Number(crashAt))) {
          appendFileSync(log, `! ${id}\n`);
          process.kill(process.pid, "SIGKILL");
        }
        appendFileSync(log, `- ${id}\n`);
        await held.release();
      }
    }),
  );
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`lock-worker: ${String(error)}\n`);
    process.exitCode = 1;
  });
}
