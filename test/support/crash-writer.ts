// A child process for the crash test: rewrites one file with the real writer, version after version, until killed.
// Each version's content is derived from its number alone, so the test can tell a whole file from a torn one.
import { writeFileAtomic } from "../../agent/root/write";

/** Version v: a header naming it, then ~256 KiB whose bytes depend on v, then a trailer. */
export function versionContent(v: number): string {
  const line = `${v.toString(36)} `.repeat(Math.ceil(120 / (v.toString(36).length + 1))).slice(0, 120);
  return `version ${v}\n${`${line}\n`.repeat(2048)}end of version ${v}\n`;
}

/** The version a file claims to be, or undefined when it does not even start like one. */
export function claimedVersion(text: string): number | undefined {
  const m = /^version (\d+)\n/.exec(text);
  return m ? Number(m[1]) : undefined;
}

async function main(): Promise<void> {
  const [path, first] = process.argv.slice(2);
  if (!path || !first) throw new Error("usage: crash-writer PATH FIRST-VERSION");
  process.stdout.write("ready\n");
  for (let v = Number(first); ; v++) {
    await writeFileAtomic({ path, content: versionContent(v), backup: `${path}.bootlace-bak` });
  }
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`crash-writer: ${String(error)}\n`);
    process.exitCode = 1;
  });
}
