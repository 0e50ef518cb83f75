// Runs the user's `check` and `on_change` commands with /bin/sh, bounded by the run's deadline, keeping the end of
// their output for the report.
import { spawn } from "node:child_process";

export interface CommandResult {
  /** Exit code; null when it was killed by a signal (or never started). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last part of stdout and stderr together, trimmed. */
  output: string;
  /** Set when it could not run at all (sh missing, cwd missing) or was cut off by the deadline. */
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
export function runCommand(command: string, o: { cwd: string; signal: AbortSignal }): Promise<CommandResult> {
  return new Promise((resolve) => {
    if (o.signal.aborted) {
      resolve({ code: null, signal: null, output: "", error: "not run: the deadline had passed" });
      return;
    }
    let output = "";
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-KEEP);
    };
    const child = spawn("/bin/sh", ["-c", command], {
      cwd: o.cwd,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
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
    child.once("error", (e) => {
      error ??= e.message;
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

/** "exit 1: <output>" for a report. */
export function describeResult(r: CommandResult): string {
  const how = r.error ?? (r.code !== null ? `exit ${r.code}` : `killed by ${r.signal ?? "a signal"}`);
  return r.output ? `${how}: ${r.output.split("\n").slice(-5).join(" | ")}` : how;
}
