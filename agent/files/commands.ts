// Runs the user's `check` and `on_change` commands as an argv (template/command.ts renders them; a string command is
// ["/bin/sh", "-c", text]), with the environment it is given and nothing else, bounded by the run's deadline, keeping
// the end of their output for the report.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { DEFAULT_PATH } from "./command-env";

export interface CommandResult {
  /** Exit code; null when it was killed by a signal (or never started). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last part of stdout and stderr together, trimmed. */
  output: string;
  /** Set when it could not run at all (the program not found, cwd missing) or was cut off by the deadline. */
  error?: string;
}

const KEEP = 2000;
/** After SIGTERM at the deadline, how long the command's processes have to end before SIGKILL. */
export const KILL_AFTER_MS = 2000;

/**
 * The command runs in a process group of its own (detached), so that at the deadline the whole group is stopped: the
 * shell and everything it started (`sleep 100; true` would otherwise keep the pipes open, and the run, long after the
 * shell is gone). SIGTERM first, SIGKILL ~2 s later for what ignores it.
 */
export function runCommand(
  argv: readonly string[],
  o: { cwd: string; signal: AbortSignal; env?: Record<string, string> },
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const [program, ...args] = argv;
    if (program === undefined || program === "") {
      resolve({ code: null, signal: null, output: "", error: "not run: no program" });
      return;
    }
    if (o.signal.aborted) {
      resolve({ code: null, signal: null, output: "", error: "not run: the deadline had passed" });
      return;
    }
    let output = "";
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-KEEP);
    };
    // No shell: each element is one argument, whatever it holds.
    const child = spawn(program, args, {
      cwd: o.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: o.env ?? { PATH: DEFAULT_PATH },
    });
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let error: string | undefined;
    let hard: NodeJS.Timeout | undefined;
    const killGroup = (signal: NodeJS.Signals): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // The group is gone already.
      }
    };
    const stop = (): void => {
      error = "stopped at the deadline";
      killGroup("SIGTERM");
      hard = setTimeout(() => killGroup("SIGKILL"), KILL_AFTER_MS);
      hard.unref();
    };
    o.signal.addEventListener("abort", stop, { once: true });
    child.once("error", (e: NodeJS.ErrnoException) => {
      error ??= spawnError(program, o.cwd, o.env?.PATH, e);
    });
    child.once("close", (code, signal) => {
      o.signal.removeEventListener("abort", stop);
      // What the shell left running in its group (a background job) goes with it once the deadline has passed.
      if (hard !== undefined) {
        clearTimeout(hard);
        killGroup("SIGKILL");
      }
      resolve({ code, signal, output: output.trim(), ...(error !== undefined && { error }) });
    });
  });
}

/** Why the program did not start, in words: ENOENT is the program (or the folder it runs in) not found. */
function spawnError(program: string, cwd: string, path: string | undefined, e: NodeJS.ErrnoException): string {
  if (e.code === "ENOENT" && !existsSync(cwd)) return `not run: the folder ${cwd} it runs in does not exist`;
  if (e.code === "ENOENT") {
    const where = program.includes("/") ? "" : ` in PATH (${path ?? "none"})`;
    return `not run: ${JSON.stringify(program)} not found${where}`;
  }
  if (e.code === "EACCES") return `not run: ${JSON.stringify(program)} is not executable`;
  return `not run: ${e.message}`;
}

/** "exit 1: <output>" for a report. */
export function describeResult(r: CommandResult): string {
  const how = r.error ?? (r.code !== null ? `exit ${r.code}` : `killed by ${r.signal ?? "a signal"}`);
  return r.output ? `${how}: ${r.output.split("\n").slice(-5).join(" | ")}` : how;
}
