// Writes bootlace(8), in groff's man format, from the command's own --help (the overview and each command's help):
// the commands, their arguments and the options are what the CLI says, so the page cannot drift from it. Exit status,
// files and the systemd units are added here, from docs/ and the product's interface.
//   node scripts/man-page.mjs [COMMAND...]     default: node dist/bootlace.js; prints the page on stdout
// The date is SOURCE_DATE_EPOCH's (else today's), so the same tree gives the same page. scripts/package.sh and
// scripts/install.sh install it as /usr/share/man/man8/bootlace.8.gz.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

const command = process.argv.length > 2 ? process.argv.slice(2) : ["node", "dist/bootlace.js"];

/** The command's output for these arguments; a failure stops the page (a half page is worse than none). */
function say(...args) {
  const [file, ...rest] = command;
  const r = spawnSync(file, [...rest, ...args], { encoding: "utf8", env: { ...process.env, COLUMNS: "100" } });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${command.join(" ")} ${args.join(" ")} exited ${r.status}:\n${r.stderr}`);
  return r.stdout;
}

/**
 * bootlace's help (agent/cli.ts): a usage line, paragraphs, then sections ("Commands:", "Options:"...) of entries, each a name at two
 * spaces, its description in a column (continued on more deeply indented lines) and [type] [default: …] at the end.
 */
function parseHelp(text) {
  const lines = text.replace(/\n+$/, "").split("\n");
  const help = { usage: lines[0] ?? "", paragraphs: [], sections: new Map() };
  let section;
  let paragraph = [];
  for (const line of lines.slice(1)) {
    const heading = /^(\w[\w ]*):$/.exec(line);
    if (heading) {
      section = [];
      help.sections.set(heading[1], section);
    } else if (section === undefined) {
      if (line.trim() === "") {
        if (paragraph.length > 0) help.paragraphs.push(paragraph.join(" "));
        paragraph = [];
      } else paragraph.push(line.trim());
    } else if (/^ {2}\S/.test(line)) {
      const [name, ...rest] = line.trim().split(/ {2,}/);
      section.push({ name, text: rest.join(" ") });
    } else if (/^ {3,}\S/.test(line) && section.length > 0) {
      const entry = section[section.length - 1];
      entry.text = `${entry.text} ${line.trim()}`.trim();
    }
  }
  if (paragraph.length > 0) help.paragraphs.push(paragraph.join(" "));
  for (const entries of help.sections.values()) {
    for (const entry of entries) {
      // The trailing [string] [default: "/"] [choices: "a", "b"] becomes its own field.
      const bracket = /\[(?:[^[\]]|\[[^\]]*\])*\]/.source;
      const meta = new RegExp(`((?:\\s*${bracket})+)$`).exec(entry.text);
      entry.meta = meta ? [...meta[1].matchAll(new RegExp(bracket, "g"))].map((m) => m[0].slice(1, -1)) : [];
      entry.text = meta ? entry.text.slice(0, meta.index).trim() : entry.text;
    }
  }
  return help;
}

/** Something typed (a command, an option, a path): every hyphen a minus sign, so that it can be copied. */
function literal(text) {
  return text.replace(/\\/g, "\\e").replace(/-/g, "\\-");
}

/** Prose for groff: options' dashes and `code` typed as literals, no line starting with a control character. */
function roff(text) {
  return text
    .replace(/\\/g, "\\e")
    .replace(/`([^`]*)`/g, (_, code) => `\\fB${code.replace(/-/g, "\\-")}\\fR`)
    .replace(/(^|[\s(])(-{1,2})(?=\w)/g, (_, before, dashes) => before + dashes.replace(/-/g, "\\-"))
    .replace(/^([.'])/, "\\&$1");
}

/** [default: "/"] [choices: "a", "b"] as "(choices: "a", "b"; default: "/")"; the type goes with the option's name. */
function metaText(meta) {
  const shown = meta.filter((m) => m.includes(":") && m !== "default: []" && m !== "default: false");
  return shown.length > 0 ? `(${shown.join("; ")})` : "";
}

function optionItem(entry) {
  const type = entry.meta.find((m) => ["string", "number", "array"].includes(m));
  const choices = entry.meta.find((m) => m.startsWith("choices:"));
  const names = { number: "\\fIn\\fR", string: "\\fIstring\\fR", array: "\\fIvalue\\fR (repeatable)" };
  const value = choices ? "\\fIvalue\\fR" : (names[type] ?? "");
  const text = [entry.text, metaText(entry.meta)].filter(Boolean).join(" ");
  return [".TP", `\\fB${literal(entry.name)}\\fR${value ? ` ${value}` : ""}`, roff(text || "(no description)")];
}

const overview = parseHelp(say("--help"));
const version = say("--version").trim();
const commands = overview.sections.get("Commands") ?? [];
if (commands.length === 0) throw new Error("bootlace --help lists no commands: is this bootlace?");
const options = overview.sections.get("Options") ?? [];
const epoch = Number(process.env.SOURCE_DATE_EPOCH ?? Math.floor(Date.now() / 1000));
const date = new Date(epoch * 1000).toISOString().slice(0, 10);
const [summary = "", ...description] = overview.paragraphs;
// Where the unit's sandbox lets bootlace write: the unit's own ReadWritePaths (a leading "-": only if it exists).
const unit = readFileSync(new URL("../systemd/bootlace.service", import.meta.url), "utf8");
const writable = [...unit.matchAll(/^ReadWritePaths=(.*)$/gm)].flatMap((m) => m[1].trim().split(/\s+/));
if (writable.length === 0) throw new Error("systemd/bootlace.service has no ReadWritePaths=");
const writableText = writable.map((p) => p.replace(/^-/, "")).join(", ");

const page = [
  `.TH BOOTLACE 8 ${date} "bootlace ${version}" "System Administration"`,
  ".nh",
  ".ad l",
  ".SH NAME",
  `bootlace \\- ${roff(summary.replace(/\.$/, "").replace(/^\w/, (c) => c.toLowerCase()))}`,
  ".SH SYNOPSIS",
  ".B bootlace",
  ".I command",
  ".RI [ options ]",
  ".SH DESCRIPTION",
  ...description.flatMap((p) => [".PP", roff(p)]),
  ".PP",
  roff(
    "bootlace runs at every boot of an EC2 instance (bootlace.service): it reads the instance metadata service " +
      "and its configuration, then wires the instance into its world. The configuration is described in " +
      "/usr/share/doc/bootlace/docs/configuration.md.",
  ),
  ".SH COMMANDS",
];
for (const entry of commands) {
  const [, name, args = ""] = /^bootlace (\S+)\s*(.*)$/.exec(entry.name) ?? [];
  if (!name) throw new Error(`cannot read the command ${JSON.stringify(entry.name)} in bootlace --help`);
  const own = parseHelp(say(name, "--help"));
  // A command's own help: its description (in full) and its positional arguments.
  const [text = entry.text] = own.paragraphs;
  const argsText = literal(args).replace(/[[<]([^\]>]*)[\]>]/g, (m, a) =>
    m.startsWith("[") ? `[\\fI${a}\\fR]` : `\\fI${a}\\fR`,
  );
  page.push(".TP", `\\fB${literal(name)}\\fR${argsText ? ` ${argsText}` : ""}`, roff(text));
  for (const positional of own.sections.get("Positionals") ?? []) {
    page.push(".RS", ".TP", `\\fI${literal(positional.name)}\\fR`, roff(positional.text || "(no description)"), ".RE");
  }
}
page.push(".SH OPTIONS", roff("Every command takes these options."), ...options.flatMap(optionItem));
page.push(
  ".SH EXIT STATUS",
  ".TP",
  ".B 0",
  "Done: every action applied (or, for plan and validate, nothing is wrong).",
  ".TP",
  ".B 1",
  roff("An action failed; the others still ran (run, stop, doctor)."),
  ".TP",
  ".B 2",
  roff("A configuration or usage error: the message names its source and key; nothing was changed."),
  ".TP",
  ".B 3",
  roff("No instance metadata within the deadline (run, plan)."),
  ".SH FILES",
  ".TP",
  ".I /etc/bootlace/bootlace.yaml",
  "The baked configuration, then",
  ".IR /etc/bootlace/conf.d/*.yaml",
  "in name order; user-data selects and overrides.",
  ".TP",
  ".I /var/lib/bootlace/state.json",
  roff("What the last run did, and what stop must undo."),
  ".TP",
  ".I /run/bootlace.lock",
  "One run at a time.",
  ".TP",
  ".I /etc/default/bootlace",
  roff("Environment for the units and the init script (AWS_REGION, AWS_ENDPOINT_URL, HTTPS_PROXY)."),
  ".SH NOTES",
  roff(
    `bootlace.service and bootlace-watch.service run in a sandbox: files can be written under ${writableText} ` +
      'only. A file elsewhere fails with "read-only file system"; allow its folder with a drop-in ' +
      "(systemctl edit bootlace.service, then ReadWritePaths=) as /usr/share/doc/bootlace/docs/boot-integration.md " +
      "describes.",
  ),
  ".SH SEE ALSO",
  ".BR systemctl (1),",
  ".BR systemd.exec (5)",
  ".PP",
  "/usr/share/doc/bootlace/README.md and /usr/share/doc/bootlace/docs/",
);
process.stdout.write(`${page.join("\n")}\n`);
