// Bundles a test/support script into a temporary folder, so that a test can start it as a plain Node process (a
// writer to kill, a lock holder to crash) without ts-node.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { build } from "esbuild";

export interface ChildScript {
  /** The temporary folder: the script, and whatever the test puts beside it. */
  work: string;
  /** The bundled script's path, to run with process.execPath. */
  script: string;
  remove(): Promise<void>;
}

/** Bundles test/support/<name>.ts into a new temporary folder named after `prefix`. */
export async function childScript(name: string, prefix: string): Promise<ChildScript> {
  const work = await mkdtemp(join(tmpdir(), prefix));
  const script = join(work, `${name}.js`);
  await build({
    entryPoints: [join(__dirname, `${name}.ts`)],
    bundle: true,
    platform: "node",
    target: "node18",
    format: "cjs",
    outfile: script,
    logLevel: "warning",
  });
  return { work, script, remove: () => rm(work, { recursive: true, force: true }) };
}
