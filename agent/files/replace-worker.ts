// Regular expressions from the configuration run where they can be stopped: a pattern that backtracks badly ((a+)+$ on
// a long line) would hold the one thread, its timers and the deadline with it, for minutes. In a worker thread it is
// terminated at the deadline (Worker.terminate() stops even a regex that is running). The worker starts only for
// files with replace edits; its source is applyReplace's own (a string: the bundle stays one file, the single
// executable too).
import { Worker } from "node:worker_threads";
import type { LineEdit, ReplaceResult } from "./edit";
import { applyReplace } from "./edit";

/** The replace edits did not end by the deadline; `edit` is the index of the one that was running (none: not started). */
export class ReplaceStoppedError extends Error {
  override readonly name = "DeadlineError";
  constructor(readonly edit?: number) {
    super(
      edit === undefined
        ? "replace edits not run: the deadline had passed"
        : `replace edit ${edit} was still running at the deadline`,
    );
  }
}

const SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const applyReplace = ${applyReplace.toString()};
const progress = new Int32Array(workerData.progress);
parentPort.postMessage(applyReplace(workerData.content, workerData.edits, (i) => Atomics.store(progress, 0, i)));
`;

/**
 * One worker at a time, as a rule: files are planned concurrently, and each worker costs ~10 MB and ~25 ms to start
 * (thirty at once would pass 250 MB); one after the other, thirty files take under a second. But a turn gives up its
 * place after SLOT_MS even when it has not ended, so that a pattern that backtracks holds only its own file: the
 * files queued behind it run in workers of their own while it runs on to the deadline.
 */
export const SLOT_MS = 250;

let queue: Promise<void> = Promise.resolve();

/** applyReplace in a worker thread, terminated when `signal` aborts (ReplaceStoppedError names the edit running). */
export function applyReplaceStoppable(content: string, edits: LineEdit[], signal: AbortSignal): Promise<ReplaceResult> {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const turn = queue.then(() => {
    const slot = setTimeout(release, SLOT_MS);
    slot.unref();
    const work = inWorker(content, edits, signal);
    const ended = (): void => {
      clearTimeout(slot);
      release();
    };
    work.then(ended, ended);
    return work;
  });
  queue = released;
  return turn;
}

function inWorker(content: string, edits: LineEdit[], signal: AbortSignal): Promise<ReplaceResult> {
  if (signal.aborted) return Promise.reject(new ReplaceStoppedError());
  const progress = new SharedArrayBuffer(4);
  const worker = new Worker(SOURCE, { eval: true, workerData: { content, edits, progress } });
  return new Promise<ReplaceResult>((resolve, reject) => {
    const stop = (): void => {
      reject(new ReplaceStoppedError(Atomics.load(new Int32Array(progress), 0)));
      void worker.terminate();
    };
    signal.addEventListener("abort", stop, { once: true });
    const done = (): void => signal.removeEventListener("abort", stop);
    worker.once("message", (result: ReplaceResult) => {
      done();
      resolve(result);
    });
    worker.once("error", (error) => {
      done();
      reject(error);
    });
    worker.once("exit", (code) => {
      done();
      reject(new Error(`the replace worker ended (exit ${code}) without a result`));
    });
  });
}
