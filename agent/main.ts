// The bundle's entry point: process in, exit code out. Everything else lives in runAgent.
import { runAgent } from "./agent";

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
