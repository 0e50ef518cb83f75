// The command line: commands, global options and --help, parsed by yargs without letting it print or exit itself.
import yargs from "yargs/yargs";
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

const commands: [string, string][] = [
  ["run", "Wire this instance at boot: read IMDS and configuration, plan, apply, record state"],
  ["plan", "Show what `run` would change, changing nothing"],
  ["stop", "At shutdown: undo what should not outlive the instance (records marked delete_on_shutdown...)"],
  ["validate [file]", "Check a configuration or user-data file offline (no AWS, no IMDS)"],
  ["status", "Print what the last run did"],
  [
    "iam-policy",
    "Print the least-privilege IAM policy JSON for the effective configuration (read as validate reads it: baked files, --config, --user-data, flags; no IMDS, no AWS)",
  ],
  ["watch", "Keep running: re-discover peers and rewrite files when they change"],
  [
    "doctor",
    "Diagnose why this instance would not wire: IMDS, credentials, clock, permissions, DNS, cloud-init, the unit (read-only)",
  ],
];

export async function parseCli(argv: string[]): Promise<Parsed> {
  let chosen: { command: CommandName; file?: string } | undefined;
  const parser = yargs(argv)
    .scriptName("bootlace")
    .usage(
      "$0 <command> [options]\n\nBoot-time wiring for EC2: Elastic IP, target groups, Route 53 records, peer-aware files.",
    )
    .option("config", { type: "string", describe: "Configuration file to use instead of /etc/bootlace", global: true })
    .option("user-data", { type: "string", describe: "User-data file to use instead of IMDS user-data", global: true })
    .option("root", { type: "string", default: "/", describe: "Take every file path under this folder", global: true })
    .option("json", { type: "boolean", default: false, describe: "Machine-readable result on stdout", global: true })
    .option("log-format", { choices: ["text", "json"] as const, default: "text" as const, global: true })
    .option("log-level", {
      choices: ["debug", "info", "warn", "error"] as const,
      default: "info" as const,
      global: true,
    })
    .option("deadline", { type: "number", default: 300, describe: "Seconds the whole command may take", global: true })
    .option("profile", { type: "string", describe: "Select profiles.NAME (overrides user-data)", global: true })
    .option("set", {
      type: "string",
      array: true,
      default: [] as string[],
      describe: "path=value override",
      global: true,
    })
    .strict()
    .demandCommand(1, "name a command")
    .recommendCommands()
    .version(version)
    .help()
    .wrap(Math.min(120, process.stdout.columns || 100))
    .exitProcess(false);
  for (const [spec, describe] of commands) {
    parser.command(
      spec,
      describe,
      (y) => (spec.startsWith("validate") ? y.positional("file", { type: "string", describe: "File to check" }) : y),
      (a) => {
        const name = spec.split(" ")[0] as CommandName;
        chosen = typeof a.file === "string" ? { command: name, file: a.file } : { command: name };
      },
    );
  }
  return new Promise((resolve) => {
    void parser.parse(argv, {}, (error, a, output) => {
      if (error) {
        resolve({ kind: "output", text: `bootlace: ${error.message} (see bootlace --help)\n`, exitCode: 2 });
        return;
      }
      if (!chosen) {
        resolve({ kind: "output", text: output ? `${output}\n` : "", exitCode: 0 });
        return;
      }
      if (!Number.isFinite(a.deadline) || a.deadline <= 0) {
        resolve({ kind: "output", text: `bootlace: --deadline must be a positive number of seconds\n`, exitCode: 2 });
        return;
      }
      const args: GlobalArgs = {
        root: a.root,
        json: a.json,
        logFormat: a["log-format"],
        logLevel: a["log-level"],
        deadline: a.deadline,
        set: a.set.map(String),
        ...(a.config !== undefined && { config: a.config }),
        ...(a["user-data"] !== undefined && { userData: a["user-data"] }),
        ...(a.profile !== undefined && { profile: a.profile }),
      };
      resolve({ kind: "command", ...chosen, args });
    });
  });
}
