// The bundle's entry point: process in, exit code out. Everything else lives in runAgent.
import { runAgent } from "./agent";

// On Node 18 (Debian 12's, the oldest bootlace supports) the AWS SDK prints at every start that its own support for
// that Node ends; at every boot that is noise in the journal, and a plain line that breaks --log-format json. Node's
// printer still gets every other warning.
const printWarning = process.listeners("warning");
process.removeAllListeners("warning");
process.on("warning", (warning) => {
  if (warning.message.startsWith("NodeDeprecationWarning: The AWS SDK for JavaScript (v3)")) return;
  for (const print of printWarning) print(warning);
});

runAgent({
  argv: process.argv.slice(2),
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bootlace: internal error: ${String(error)}\n`);
    process.exitCode = 1;
  },
);
