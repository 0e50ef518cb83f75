// Tests that need a system tool (dpkg, systemd-analyze, shellcheck...) say so loudly when it is missing: in CI, where
// scripts/ci-deps.sh installs them, a missing tool fails the run; on a laptop the tests skip with a message.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function haveTool(command: string, installHint: string): boolean {
  if (spawnSync("sh", ["-c", `command -v ${command}`]).status === 0) return true;
  const message = `${command} not found (${installHint}; or run scripts/ci-deps.sh)`;
  if (process.env.CI) throw new Error(`${message}: CI must have it`);
  console.warn(`\n*** SKIPPED: ${message} ***\n`);
  return false;
}

/** Runs a command to completion; throws with its output when it exits non-zero. */
export function run(command: string, args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(command, args, { encoding: "utf8", env: { ...process.env, ...env } });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(" ")} exited ${r.status}:\n${r.stdout}${r.stderr}`);
  }
  return r.stdout + r.stderr;
}

/** A file's SHA-256: compares large files cheaply (jest's deep equality walks a Buffer byte by byte). */
export function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Whether this machine lets the test make a read-only bind mount (root, mount(8) present and permitted). */
export function canBindReadOnly(): boolean {
  const probe = mkdtempSync(join(tmpdir(), "bootlace-ro-probe-"));
  try {
    mkdirSync(join(probe, "ro"));
    execFileSync("mount", ["--bind", "-o", "ro", probe, join(probe, "ro")], { stdio: "ignore" });
    execFileSync("umount", [join(probe, "ro")], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
