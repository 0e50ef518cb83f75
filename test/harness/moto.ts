// Starting and stopping one moto_server process on a free loopback port.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { freePort } from "./ports";

export interface Moto {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export const MOTO_MISSING = "moto_server not found: pip install 'moto[server]'";
const READY_TIMEOUT_MS = 30_000;

/** True when `moto_server` can be executed from PATH. */
export function motoAvailable(): boolean {
  const probe = spawnSync("moto_server", ["--help"], { stdio: "ignore", timeout: 30_000, env: process.env });
  return !probe.error && probe.status === 0;
}

// moto runs under a small sh watchdog that holds our end of a stdin pipe: when this process dies in any way
// (including SIGKILL of a jest worker, where no exit hook runs) the pipe closes and the watchdog kills moto.
const WATCHDOG = [
  "exec 3<&0",
  'moto_server "$@" </dev/null &',
  "pid=$!",
  "( read _ <&3; kill $pid 2>/dev/null ) &",
  "wait $pid",
].join("\n");

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const child of live) killGroup(child, "SIGTERM");
  });
}

export async function startMoto(): Promise<Moto> {
  // The port can be taken between freePort() and moto's bind; a retry on early exit covers that race.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(await freePort());
    } catch (e) {
      if (attempt >= 3 || !(e instanceof EarlyExit)) throw e;
    }
  }
}

class EarlyExit extends Error {}

async function startOnce(port: number): Promise<Moto> {
  const child = spawn("sh", ["-c", WATCHDOG, "moto-watchdog", "-H", "127.0.0.1", "-p", String(port)], {
    stdio: ["pipe", "ignore", "pipe"],
    detached: true, // its own process group, so a forced stop reaches moto as well as the watchdog
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  live.add(child);
  killAllOnExit();
  let stderr = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    if (stderr.length < 8_000) stderr += chunk;
  });
  const exited = new Promise<never>((_, reject) => {
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      live.delete(child);
      if (code === 127) reject(new Error(MOTO_MISSING));
      else reject(new EarlyExit(`moto_server exited before it answered (code ${code}, signal ${signal}): ${stderr}`));
    });
  });
  exited.catch(() => undefined);
  // Jest must not wait for these handles; the watchdog, not the event loop, keeps moto tied to our lifetime.
  child.unref();
  const endpoint = `http://127.0.0.1:${port}`;

  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.stdin?.end();
    const timer = setTimeout(() => killGroup(child, "SIGKILL"), 3_000);
    await gone;
    clearTimeout(timer);
    live.delete(child);
  };
  try {
    await Promise.race([waitReady(endpoint), exited]);
  } catch (e) {
    await stop();
    throw e;
  }
  return { endpoint, port, stop };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    child.kill(signal);
  }
}

async function waitReady(endpoint: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) });
      await res.arrayBuffer();
      if (res.status < 500) return;
      last = new Error(`HTTP ${res.status}`);
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`moto_server on ${endpoint} did not answer within ${READY_TIMEOUT_MS} ms: ${String(last)}`);
}
