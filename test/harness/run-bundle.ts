// Runs the shipped artefact, dist/bootlace.js, as a separate process with a minimal environment that can only reach
// the loopback emulators: no AWS credentials, no region, no config files, so everything comes from IMDS as on EC2.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

export const REPO_ROOT = findRepoRoot();
export const BUNDLE = join(REPO_ROOT, "dist", "bootlace.js");
/**
 * The Node that runs the bundle: BOOTLACE_TEST_NODE when set (CI runs the integration suite again on the oldest Node
 * bootlace supports, fetched by scripts/fetch-node.sh), else the Node running the tests.
 */
export const BUNDLE_NODE = process.env.BOOTLACE_TEST_NODE || process.execPath;

// Found by package name rather than a fixed "../..": this module also runs bundled, from dist/ (the demo).
function findRepoRoot(): string {
  for (let dir = __dirname; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name?: unknown };
      if (pkg.name === "bootlace") return dir;
    } catch {
      // no package.json here; keep walking up
    }
    if (dirname(dir) === dir) return resolve(__dirname, "..", "..");
  }
}

export interface RunOptions {
  /** IMDS emulator endpoint (AWS_EC2_METADATA_SERVICE_ENDPOINT). */
  imds: string;
  /** AWS fidelity proxy endpoint (AWS_ENDPOINT_URL). */
  aws: string;
  /** From makeRoot(); passed as --root. */
  root: string;
  env?: Record<string, string>;
  /** Default 60000; the process is killed after it. */
  timeoutMs?: number;
  stdin?: string;
  /** Node executable; default BUNDLE_NODE. */
  node?: string;
  /** Runs this instead of node + the bundle: an installed /usr/bin/bootlace, the single executable. */
  command?: string;
  /** Called with the process once started: a test of a long-running command (watch) signals it. */
  onSpawn?: (child: ChildProcess) => void;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout parsed, when it looks like JSON. */
  json?: unknown;
  timedOut: boolean;
}

/** A fresh root with the directories bootlace expects under `/`. */
export async function makeRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "bootlace-root-"));
  await Promise.all(
    [["etc", "bootlace"], ["var", "lib", "bootlace"], ["run"]].map((p) => mkdir(join(root, ...p), { recursive: true })),
  );
  return root;
}

export async function runBootlace(args: string[], o: RunOptions): Promise<RunResult> {
  assertLoopback("imds", o.imds);
  assertLoopback("aws", o.aws);
  for (const [k, v] of Object.entries(o.env ?? {})) {
    if (/^AWS_ENDPOINT_URL|^AWS_EC2_METADATA_SERVICE_ENDPOINT$/.test(k)) assertLoopback(k, v);
  }
  // doctor looks names up: with the system's resolver they would leave this machine.
  const resolver = o.env?.BOOTLACE_RESOLVER;
  if (args.includes("doctor") && !resolver?.startsWith("127.0.0.1:")) {
    throw new Error(
      "runBootlace: doctor needs BOOTLACE_RESOLVER=127.0.0.1:PORT (a stub DNS server, test/harness/dns-stub.ts)",
    );
  }
  const home = await mkdtemp(join(tmpdir(), "bootlace-home-"));
  const env: Record<string, string> = {
    // BUNDLE_NODE's folder first, so that `#!/usr/bin/env node` (an installed /usr/bin/bootlace) finds that Node too.
    PATH: `${dirname(BUNDLE_NODE)}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: home,
    AWS_EC2_METADATA_SERVICE_ENDPOINT: o.imds,
    AWS_ENDPOINT_URL: o.aws,
    AWS_EC2_METADATA_V1_DISABLED: "true",
    AWS_CONFIG_FILE: join(home, "no-aws-config"),
    AWS_SHARED_CREDENTIALS_FILE: join(home, "no-aws-credentials"),
    ...o.env,
  };
  const timeoutMs = o.timeoutMs ?? 60_000;
  try {
    return await new Promise<RunResult>((done, fail) => {
      const [file, ...first] = o.command ? [o.command] : [o.node ?? BUNDLE_NODE, BUNDLE];
      const child = spawn(file, [...first, ...args, "--root", o.root], {
        env,
        cwd: home,
        stdio: ["pipe", "pipe", "pipe"],
      });
      o.onSpawn?.(child);
      let stdout = "";
      let stderr = "";
      let timedOut = false;
      child.stdout.setEncoding("utf8").on("data", (s: string) => (stdout += s));
      child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, timeoutMs);
      child.once("error", (e) => {
        clearTimeout(timer);
        fail(e);
      });
      child.once("close", (code) => {
        clearTimeout(timer);
        if (timedOut)
          stderr += `\n[run-bundle] killed: bootlace ${args.join(" ")} did not exit within ${timeoutMs} ms\n`;
        const result: RunResult = { code, stdout, stderr, timedOut };
        const json = parseJson(stdout);
        if (json !== undefined) result.json = json;
        done(result);
      });
      // An EPIPE here only means the process exited without reading its input; 'close' reports the outcome.
      child.stdin.on("error", () => undefined);
      child.stdin.end(o.stdin ?? "");
    });
  } finally {
    await rm(home, { recursive: true, force: true });
  }
}

/** Tests must never reach 169.254.169.254 or real AWS. */
function assertLoopback(what: string, endpoint: string): void {
  let host: string;
  try {
    host = new URL(endpoint).hostname;
  } catch {
    throw new Error(`runBootlace: ${what} endpoint "${endpoint}" is not a URL`);
  }
  if (host !== "127.0.0.1") throw new Error(`runBootlace: ${what} endpoint "${endpoint}" is not on 127.0.0.1`);
}

function parseJson(stdout: string): unknown {
  const text = stdout.trim();
  if (!/^[[{]/.test(text)) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
