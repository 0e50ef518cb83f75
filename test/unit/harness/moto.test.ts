// moto_server starts on a free loopback port, stops on request, says how to install it when missing, and never
// outlives the process that started it.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildSync } from "esbuild";
import { MOTO_MISSING, motoAvailable, startMoto } from "../../harness/moto";
import { freePort } from "../../harness/ports";

jest.setTimeout(30_000);

const refused = (endpoint: string) =>
  fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2_000) }).then(
    () => false,
    () => true,
  );

async function eventually(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

it("freePort gives distinct bindable loopback ports", async () => {
  const [a, b] = await Promise.all([freePort(), freePort()]);
  expect(a).toBeGreaterThan(1023);
  expect(a).not.toBe(b);
});

it("starts moto on 127.0.0.1, answering, and stop() takes it down", async () => {
  const moto = await startMoto();
  expect(moto.endpoint).toBe(`http://127.0.0.1:${moto.port}`);
  expect((await fetch(`${moto.endpoint}/moto-api/`)).status).toBe(200);
  await moto.stop();
  expect(await refused(moto.endpoint)).toBe(true);
  await moto.stop(); // idempotent
});

it("says how to install moto when moto_server is not on PATH", async () => {
  const path = process.env.PATH;
  process.env.PATH = "/usr/bin:/bin";
  try {
    expect(motoAvailable()).toBe(false);
    await expect(startMoto()).rejects.toThrow(MOTO_MISSING);
  } finally {
    process.env.PATH = path;
  }
  expect(motoAvailable()).toBe(true);
});

it("does not outlive a parent that is killed outright (no exit hooks run)", async () => {
  const dir = mkdtempSync(join(tmpdir(), "moto-orphan-"));
  const script = join(dir, "start-moto.js");
  buildSync({
    stdin: {
      contents: `import { startMoto } from "./moto";\nstartMoto().then((m) => { console.log(m.endpoint); setInterval(() => {}, 1000); });`,
      resolveDir: resolve(__dirname, "../../harness"),
      loader: "ts",
    },
    bundle: true,
    platform: "node",
    outfile: script,
    logLevel: "silent",
  });
  writeFileSync(join(dir, "package.json"), "{}");
  const parent = spawn(process.execPath, [script], { stdio: ["ignore", "pipe", "inherit"] });
  const endpoint = await new Promise<string>((resolveEndpoint) =>
    parent.stdout.setEncoding("utf8").once("data", (s: string) => resolveEndpoint(s.trim())),
  );
  expect((await fetch(`${endpoint}/moto-api/`)).status).toBe(200);

  parent.kill("SIGKILL");
  expect(await eventually(() => refused(endpoint), 10_000)).toBe(true);
});
