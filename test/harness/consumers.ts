// The real consumers of the files bootlace writes, for tests that must show a value did not become code, a command, an
// extra line, field or rule: Debian's php-cli (php -l, then the file included in a fresh process), a throw-away
// PostgreSQL cluster (pg_hba_file_rules), /etc/hosts parsed the way glibc reads it, and sentinel paths no command may
// create. php and PostgreSQL come from scripts/ci-deps.sh; a missing one fails the test, it never skips.
import { execFile } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { chown, copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);
const INSTALL = "install via scripts/ci-deps.sh";

/** Throws (never skips) when a consumer is missing: CI installs them, and a silent skip proves nothing. */
export function requireConsumers(): void {
  if (!existsSync("/usr/bin/php")) throw new Error(`php not found (Debian's php-cli): ${INSTALL}`);
  postgresBin();
}

function postgresBin(): string {
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort() : [];
  const bin = versions.map((v) => `/usr/lib/postgresql/${v}/bin`).find((b) => existsSync(join(b, "initdb")));
  if (!bin)
    throw new Error(`PostgreSQL's initdb not found under /usr/lib/postgresql (Debian's postgresql): ${INSTALL}`);
  return bin;
}

export interface PhpResult {
  /** `php -l`'s verdict: true when the file parses. */
  lint: boolean;
  lintOutput: string;
  /** User constants after including the file (absent when the lint failed). */
  constants?: Record<string, unknown>;
  /** Variables the file defined, in the scope it was included from. */
  variables?: Record<string, unknown>;
}

// Included inside a function, so get_defined_vars() is exactly what the file defined.
const PHP_DUMP = [
  "function bootlace_include() { include func_get_arg(0); return get_defined_vars(); }",
  "$vars = bootlace_include($argv[1]);",
  "$constants = get_defined_constants(true)['user'] ?? [];",
  "echo json_encode(['constants' => (object) $constants, 'variables' => (object) $vars],",
  "  JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR);",
].join("\n");

/** `php -l FILE`, then FILE included in a fresh php process that prints what it defined as JSON. */
export async function phpLintAndInclude(file: string, cwd = tmpdir()): Promise<PhpResult> {
  const lint = await exec("php", ["-n", "-l", file], { cwd, timeout: 30_000 }).then(
    (r) => ({ ok: true, out: r.stdout + r.stderr }),
    (e: { stdout?: string; stderr?: string }) => ({ ok: false, out: `${e.stdout ?? ""}${e.stderr ?? ""}` }),
  );
  if (!lint.ok) return { lint: false, lintOutput: lint.out };
  const { stdout } = await exec("php", ["-n", "-r", PHP_DUMP, file], { cwd, timeout: 30_000 });
  const dumped = JSON.parse(stdout) as { constants: Record<string, unknown>; variables: Record<string, unknown> };
  return { lint: true, lintOutput: lint.out, constants: dumped.constants, variables: dumped.variables };
}

export interface HbaRule {
  line_number: number;
  type: string | null;
  database: string[] | null;
  user_name: string[] | null;
  address: string | null;
  netmask: string | null;
  auth_method: string | null;
  error: string | null;
}

export interface PgCluster {
  /** PostgreSQL's own reading of FILE as a pg_hba.conf: one row per rule, `error` set on a line it rejects. */
  hbaRules(file: string): Promise<HbaRule[]>;
  stop(): Promise<void>;
}

/**
 * A throw-away cluster: initdb into a temp folder as the postgres user, unix socket in that folder only, no TCP. It
 * authenticates with the trust rules it started with; each file under test is copied over the hba_file it names and
 * read through pg_hba_file_rules (which reads the file as it is now) without a reload, so a bad file never locks the
 * test out. Start it once per test file.
 */
export async function startPgCluster(): Promise<PgCluster> {
  const bin = postgresBin();
  const dir = await mkdtemp(join(tmpdir(), "bootlace-pg-"));
  const data = join(dir, "data");
  const hba = join(dir, "pg_hba.conf");
  const trust = "local all all trust\n";
  await writeFile(hba, trust);
  // initdb and postgres refuse to run as root; the folder becomes the postgres user's.
  const asPostgres = userInfo().uid === 0 ? ["runuser", "-u", "postgres", "--"] : [];
  if (asPostgres.length > 0) {
    const { stdout } = await exec("id", ["-u", "postgres"]);
    const { stdout: gid } = await exec("id", ["-g", "postgres"]);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
    await chown(hba, Number(stdout.trim()), Number(gid.trim()));
  }
  const run = (cmd: string, args: string[]) => {
    const [file, ...rest] = [...asPostgres, cmd, ...args];
    return exec(file!, rest, { cwd: dir, timeout: 120_000 });
  };
  await run(join(bin, "initdb"), ["-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const options = `-c listen_addresses='' -c unix_socket_directories='${dir}' -c hba_file='${hba}' -c fsync=off`;
  await run(join(bin, "pg_ctl"), ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "-t", "120", "start"]);
  const query =
    "SELECT coalesce(json_agg(r ORDER BY line_number), '[]') FROM (SELECT line_number, type, database, user_name, " +
    "address, netmask, auth_method, error FROM pg_hba_file_rules) r";
  let queue: Promise<unknown> = Promise.resolve();
  return {
    hbaRules(file) {
      const next = queue.then(async () => {
        await copyFile(file, hba);
        try {
          const { stdout } = await exec(
            join(bin, "psql"),
            ["-h", dir, "-U", "postgres", "-d", "postgres", "-XAtq", "-c", query],
            { timeout: 60_000 },
          );
          return JSON.parse(stdout) as HbaRule[];
        } finally {
          await writeFile(hba, trust);
        }
      });
      queue = next.catch(() => undefined);
      return next;
    },
    async stop() {
      await run(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface HostsEntry {
  address: string;
  names: string[];
}

/**
 * /etc/hosts as glibc's files backend reads it: one entry per '\n'-terminated line, everything from '#' on dropped,
 * fields split on C-locale whitespace (space, tab, \r, \v, \f), the first field the address, the rest its names.
 */
export function parseHosts(text: string): HostsEntry[] {
  const entries: HostsEntry[] = [];
  for (const line of text.split("\n")) {
    const fields = line
      .replace(/#.*/s, "")
      .split(/[ \t\r\v\f]+/)
      .filter(Boolean);
    if (fields.length > 0) entries.push({ address: fields[0]!, names: fields.slice(1) });
  }
  return entries;
}

export const readHosts = async (file: string): Promise<HostsEntry[]> => parseHosts(await readFile(file, "utf8"));

/** A folder of sentinel paths: every hostile value tries to create one; none may ever exist. */
export async function sentinels(): Promise<{ dir: string; path(name: string): string; created(): string[] }> {
  const dir = await mkdtemp(join(tmpdir(), "bootlace-s-"));
  return {
    dir,
    path: (name) => join(dir, name),
    created: () => readdirSync(dir),
  };
}
