// The bundle's entry point: process in, exit code out. Everything else lives in runAgent.
import { runAgent } from "./agent";

/**
 * Seconds past --deadline after which the process ends whatever is still going on (a promise that never settles, a
 * child that ignores signals): the run itself gives up its actions 1 s after the deadline and kills its commands
 * (SIGKILL 2 s after SIGTERM), so the grace leaves it time to save state.json and report first.
 */
export const WATCHDOG_GRACE_S = 5;

// On Node 18 (Debian 12's, the oldest bootlace supports) the AWS SDK prints at every start that its own support for
// that Node ends; at every boot that is noise in the journal, and a plain line that breaks --log-format json. Node's
// printer still gets every other warning.
const printWarning = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.message.startsWith("NodeDeprecationWarning: The AWS SDK for JavaScript (v3)")) return;
  for (const print of printWarning) print(warning);
});

/**
 * The hard bound of --deadline: an unref'd timer (it never keeps a finished process alive) that exits with 1 at the
 * deadline + grace. Files stay whole: the writer only ever renames complete staged files into place.
 */
function armWatchdog(seconds: number): void {
  setTimeout(
    () => {
      process.stderr.write(`bootlace: the deadline of ${seconds} s passed and the run did not end: exiting\n`);
      process.exit(1);
    },
    (seconds + WATCHDOG_GRACE_S) * 1000,
  ).unref();
}

runAgent({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  onDeadline: armWatchdog,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bootlace: internal error: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
