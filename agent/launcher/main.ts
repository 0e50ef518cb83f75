// The first few lines of dist/bootlace.js: they answer --help, --version and a mistyped command line themselves
// (agent/cli.ts is bundled here too), and otherwise compile the agent, which the same file carries inside a comment,
// with a V8 code cache when one is there, and leave one behind after a successful run.
//
// Why the agent sits in a comment: Node would otherwise parse all of it (0.85 MB) before the first line runs, and a
// cache can only be handed to V8 by whoever compiles the code (vm.Script). Inside a comment the scanner skips it at memory speed; scripts/build.mjs puts it there, escaping the only sequence a comment
// cannot hold ("*" "/" becomes "*" \x01 "/", a byte esbuild's ASCII output never contains).
import { readFileSync } from "node:fs";
import { Script } from "node:vm";
import { helpWidth, readCommandLine } from "../cli";
import { cacheDirFrom, cacheFileName, readCache, writeCache } from "./code-cache";

const CORE_MARK = "\n/*bootlace-" + "core\n";
const CORE_END = "*/\n";

type Outcome = "hit" | "miss" | "rejected" | "off";

function start(): void {
  // --help, --version and a command line the agent would refuse are answered here: the agent is not even read.
  const parsed = readCommandLine(process.argv.slice(2), helpWidth());
  if (parsed.kind === "output") {
    (parsed.exitCode === 0 ? process.stdout : process.stderr).write(parsed.text);
    process.exitCode = parsed.exitCode;
    return;
  }
  const file = readFileSync(__filename);
  const at = file.lastIndexOf(CORE_MARK);
  if (at < 0) throw new Error(`${__filename}: no agent inside (a broken build?)`);
  const encoded = file.subarray(at + CORE_MARK.length, file.length - CORE_END.length);
  let core = encoded.toString("latin1");
  if (core.includes("\x01")) core = core.replaceAll("*\x01/", "*/");
  // The wrapper on a line of its own, so that stack traces name the agent's lines in this file.
  const firstLine =
    file
      .subarray(0, at + CORE_MARK.length)
      .toString("latin1")
      .split("\n").length - 1;
  const source = `(function (exports, require, module, __filename, __dirname) {\n${core}\n})`;

  const env = process.env;
  const uid = process.getuid?.();
  const trace =
    env.BOOTLACE_CACHE_TRACE === "1" ? (line: string) => process.stderr.write(`code cache: ${line}\n`) : undefined;
  let dir: string | undefined;
  let name = "";
  const kind = parsed.command;
  let cached: Buffer | "corrupt" | undefined;
  try {
    dir = cacheDirFrom(env, uid);
    if (dir !== undefined) {
      name = cacheFileName(kind, encoded, process.execArgv);
      cached = readCache(dir, name, uid);
    }
  } catch (error) {
    trace?.(`not read: ${String(error)}`);
    dir = undefined;
  }

  const data = typeof cached === "object" ? cached : undefined;
  const script = new Script(source, {
    filename: __filename,
    lineOffset: firstLine - 1,
    ...(data && { cachedData: data }),
  });
  const outcome: Outcome =
    dir === undefined
      ? "off"
      : cached === undefined
        ? "miss"
        : cached === "corrupt" || script.cachedDataRejected
          ? "rejected"
          : "hit";
  trace?.(`${outcome}${dir === undefined ? "" : ` ${dir}/${name}`}`);

  if (outcome === "miss" || outcome === "rejected") {
    // After the run, not now: the cache then holds every function the command compiled, not just the top level.
    process.once("exit", (code) => {
      if (code !== 0 || dir === undefined) return;
      try {
        writeCache(dir, kind, name, script.createCachedData(), uid);
        trace?.(`written ${dir}/${name}`);
      } catch (error) {
        trace?.(`not written: ${String(error)}`);
      }
    });
  }

  const agent = script.runInThisContext() as (...args: unknown[]) => void;
  agent.call(module.exports, module.exports, require, module, __filename, __dirname);
}

start();
