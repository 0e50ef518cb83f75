// The command line: commands, global options and --help. Node's own util.parseArgs reads it; the help is written here
// from the same tables. (yargs did this before; parsing with it cost ~20 ms of a 60 ms `--help`, most of it looking
// for a package.json up the directory tree at every start, and its modules another few: docs/development.md.)
import { parseArgs } from "node:util";
import type { LogFormat, LogLevel } from "./core/log";

export const version = "0.1.0";

export type CommandName = "run" | "plan" | "stop" | "validate" | "status" | "iam-policy" | "watch" | "doctor";

export interface GlobalArgs {
  config?: string;
  userData?: string;
  root: string;
  json: boolean;
  logFormat: LogFormat;
  logLevel: LogLevel;
  deadline: number;
  profile?: string;
  set: string[];
}

export type Parsed =
  | { kind: "command"; command: CommandName; args: GlobalArgs; file?: string }
  | { kind: "output"; text: string; exitCode: number };

interface CommandSpec {
  name: CommandName;
  describe: string;
  /** The one optional positional argument (validate's file). */
  positional?: { name: "file"; describe: string };
}

const commands: CommandSpec[] = [
  { name: "run", describe: "Wire this instance at boot: read IMDS and configuration, plan, apply, record state" },
  { name: "plan", describe: "Show what `run` would change, changing nothing" },
  {
    name: "stop",
    describe: "At shutdown: undo what should not outlive the instance (records marked delete_on_shutdown...)",
  },
  {
    name: "validate",
    describe: "Check a configuration or user-data file offline (no AWS, no IMDS)",
    positional: { name: "file", describe: "File to check" },
  },
  { name: "status", describe: "Print what the last run did" },
  {
    name: "iam-policy",
    describe:
      "Print the least-privilege IAM policy JSON for the effective configuration (read as validate reads it: baked files, --config, --user-data, flags; no IMDS, no AWS)",
  },
  { name: "watch", describe: "Keep running: re-discover peers and rewrite files when they change" },
  {
    name: "doctor",
    describe:
      "Diagnose why this instance would not wire: IMDS, credentials, clock, permissions, DNS, cloud-init, the unit (read-only)",
  },
];

interface OptionSpec {
  type: "string" | "boolean" | "number" | "array";
  describe?: string;
  choices?: readonly string[];
  /** As shown in the help, JSON-quoted like a value. */
  default?: string | number | boolean | [];
}

const logFormats = ["text", "json"] as const satisfies readonly LogFormat[];
const logLevels = ["debug", "info", "warn", "error"] as const satisfies readonly LogLevel[];

const options = {
  config: { type: "string", describe: "Configuration file to use instead of /etc/bootlace" },
  "user-data": { type: "string", describe: "User-data file to use instead of IMDS user-data" },
  root: { type: "string", describe: "Take every file path under this folder", default: "/" },
  json: { type: "boolean", describe: "Machine-readable result on stdout", default: false },
  "log-format": { type: "string", choices: logFormats, default: "text" },
  "log-level": { type: "string", choices: logLevels, default: "info" },
  deadline: { type: "number", describe: "Seconds the whole command may take", default: 300 },
  profile: { type: "string", describe: "Select profiles.NAME (overrides user-data)" },
  set: { type: "array", describe: "path=value override", default: [] },
  version: { type: "boolean", describe: "Show version number" },
  help: { type: "boolean", describe: "Show help" },
} satisfies Record<string, OptionSpec>;

type OptionName = keyof typeof options;

const usageError = (text: string): Parsed => ({
  kind: "output",
  text: `bootlace: ${text} (see bootlace --help)\n`,
  exitCode: 2,
});

/** The help's width: the terminal's, at most 120; 100 when stdout is not a terminal. */
export const helpWidth = (): number => Math.min(120, process.stdout.columns || 100);

/** Reads argv; never prints or exits (the caller writes `text`). */
export function parseCli(argv: string[], width = helpWidth()): Promise<Parsed> {
  return Promise.resolve(readCommandLine(argv, width));
}

/**
 * parseCli's work, synchronous: the launcher (agent/launcher/main.ts) answers --help, --version and a mistyped command
 * line with it before it loads the agent at all.
 */
export function readCommandLine(argv: string[], width: number): Parsed {
  let read: ReturnType<typeof parseOptions>;
  try {
    read = parseOptions(argv);
  } catch (error) {
    return usageError(parseArgsMessage(error));
  }
  const { values, positionals } = read;
  const [name, ...rest] = positionals;
  const command = commands.find((c) => c.name === name);
  if (values.help) {
    if (name !== undefined && !command) return unknownCommand(name);
    return { kind: "output", text: `${command ? commandHelp(command, width) : overviewHelp(width)}\n`, exitCode: 0 };
  }
  if (values.version) return { kind: "output", text: `${version}\n`, exitCode: 0 };
  if (name === undefined) return usageError("name a command");
  if (!command) return unknownCommand(name);
  if (rest.length > (command.positional ? 1 : 0)) {
    return usageError(`${name} takes ${command.positional ? "one argument" : "no argument"}: ${rest.join(" ")}`);
  }
  for (const key of ["log-format", "log-level"] as const) {
    const choices: readonly string[] = options[key].choices;
    const value = values[key];
    if (value !== undefined && !choices.includes(value)) {
      return usageError(`--${key} is ${JSON.stringify(value)}: choose from ${choices.join(", ")}`);
    }
  }
  const deadline = values.deadline === undefined ? options.deadline.default : Number(values.deadline);
  if (!Number.isFinite(deadline) || deadline <= 0) {
    return { kind: "output", text: `bootlace: --deadline must be a positive number of seconds\n`, exitCode: 2 };
  }
  const args: GlobalArgs = {
    root: values.root ?? options.root.default,
    json: values.json ?? false,
    logFormat: (values["log-format"] ?? options["log-format"].default) as LogFormat,
    logLevel: (values["log-level"] ?? options["log-level"].default) as LogLevel,
    deadline,
    set: values.set ?? [],
    ...(values.config !== undefined && { config: values.config }),
    ...(values["user-data"] !== undefined && { userData: values["user-data"] }),
    ...(values.profile !== undefined && { profile: values.profile }),
  };
  const file = rest[0];
  return { kind: "command", command: command.name, args, ...(file !== undefined && { file }) };
}

/** How parseArgs reads each option of the table above (every one, checked by the type). */
const parseArgsOptions = {
  config: { type: "string" },
  "user-data": { type: "string" },
  root: { type: "string" },
  json: { type: "boolean" },
  "log-format": { type: "string" },
  "log-level": { type: "string" },
  // Read as text and checked here: parseArgs has no numbers.
  deadline: { type: "string" },
  profile: { type: "string" },
  set: { type: "string", multiple: true },
  version: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies Record<OptionName, { type: "string" | "boolean"; multiple?: boolean; short?: string }>;

function parseOptions(argv: string[]) {
  return parseArgs({ args: argv, allowPositionals: true, strict: true, options: parseArgsOptions });
}

/** parseArgs' errors, said in one short line: an unknown option (with the nearest known one), a missing value. */
function parseArgsMessage(error: unknown): string {
  const e = error as { code?: string; message?: string };
  const option = /'(-[^'\s]*)/.exec(e.message ?? "")?.[1];
  if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && option) {
    const given = option.replace(/^-+/, "").split("=")[0]!;
    const near = nearest(given, Object.keys(options));
    return `unknown option ${option}${near ? `; did you mean --${near}?` : ""}`;
  }
  if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && option) {
    const name = option.replace(/^-+/, "").split(/[ =,]/)[0] as OptionName;
    const spec: OptionSpec | undefined = options[name];
    if (spec?.type === "boolean") return `--${name} takes no value`;
    if (e.message?.includes("ambiguous")) return `--${name}: a value that starts with "-" is written --${name}=VALUE`;
    return `--${name} needs a value`;
  }
  return (e.message ?? String(error)).split("\n")[0]!;
}

function unknownCommand(name: string): Parsed {
  const near = nearest(
    name,
    commands.map((c) => c.name),
  );
  return usageError(`unknown command ${JSON.stringify(name)}${near ? `; did you mean ${near}?` : ""}`);
}

/** The known name within two edits of what was typed, if one is (Levenshtein distance). */
function nearest(typed: string, known: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(typed, name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}

// The help, in the layout scripts/man-page.mjs reads: a usage line, paragraphs, then sections of entries (a name at
// two spaces, its description in a column, wrapped onto deeper-indented lines, and [type] [default: …] at the right).

function overviewHelp(width: number): string {
  const usage = "bootlace <command> [options]";
  const about = "Boot-time wiring for EC2: Elastic IP, target groups, Route 53 records, peer-aware files.";
  const entries = commands.map((c): Entry => [`bootlace ${commandUsage(c)}`, c.describe, ""]);
  return [usage, "", ...wrap(about, width), "", section("Commands", entries, width), "", optionsSection(width)].join(
    "\n",
  );
}

function commandHelp(c: CommandSpec, width: number): string {
  const parts = [`bootlace ${commandUsage(c)}`, "", ...wrap(c.describe, width), ""];
  if (c.positional)
    parts.push(section("Positionals", [[c.positional.name, c.positional.describe, "[string]"]], width), "");
  parts.push(optionsSection(width));
  return parts.join("\n");
}

function commandUsage(c: CommandSpec): string {
  return c.positional ? `${c.name} [${c.positional.name}]` : c.name;
}

type Entry = [name: string, text: string, meta: string];

function optionsSection(width: number): string {
  const entries = Object.entries(options).map(([name, spec]: [string, OptionSpec]): Entry => {
    const meta = [
      spec.choices ? `[choices: ${spec.choices.map((c) => JSON.stringify(c)).join(", ")}]` : `[${spec.type}]`,
      spec.default !== undefined ? `[default: ${JSON.stringify(spec.default)}]` : "",
    ];
    return [`--${name}`, spec.describe ?? "", meta.filter(Boolean).join(" ")];
  });
  return section("Options", entries, width);
}

/** "Name:" and its entries: names in a column as wide as the longest, text wrapped beside them, meta at the right. */
function section(title: string, entries: Entry[], width: number): string {
  const column = Math.max(...entries.map(([name]) => name.length)) + 4;
  const lines = [`${title}:`];
  for (const [name, text, meta] of entries) {
    const wrapped = wrap(text, Math.max(20, width - column));
    const last = wrapped.length - 1;
    const rows = wrapped.map((line, i) => (i === 0 ? `  ${name}`.padEnd(column) : " ".repeat(column)) + line);
    if (meta) {
      const room = width - rows[last]!.length;
      if (room >= meta.length + 2) rows[last] = rows[last]! + meta.padStart(room);
      else if (meta.length <= width - column) rows.push(meta.padStart(width));
      // A narrow terminal: each [part] on a line of its own.
      else rows.push(...(meta.match(/\[[^\]]*\]/g) ?? [meta]).map((part) => `  ${part}`.padStart(width)));
    }
    lines.push(...rows.map((r) => r.trimEnd()));
  }
  return lines.join("\n");
}

/** Text in lines of at most `width` characters, broken at spaces (a longer word keeps its own line). */
function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ").filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines;
}
