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

export function runCommand(command: string, o: { cwd: string; signal: AbortSignal }): Promise<CommandResult> {
  return new Promise((resolve) => {
    let output = "";
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString("utf8")).slice(-KEEP);
    };
    const child = spawn("/bin/sh", ["-c", command], {
      cwd: o.cwd,
      signal: o.signal,
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    let error: string | undefined;
    child.once("error", (e) => {
      error = o.signal.aborted ? "stopped at the deadline" : e.message;
    });
    child.once("close", (code, signal) => {
      resolve({ code, signal, output: output.trim(), ...(error !== undefined && { error }) });
    });
  });
}

/** "exit 1: <output>" for a report. */
export function describeResult(r: CommandResult): string {
  const how = r.error ?? (r.code !== null ? `exit ${r.code}` : `killed by ${r.signal ?? "a signal"}`);
  return r.output ? `${how}: ${r.output.split("\n").slice(-5).join(" | ")}` : how;
}
