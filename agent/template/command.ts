// The user's commands (`check`, `on_change`) as templates: what each form may use, and how it is rendered into the argv
// that is spawned. A value never reaches a shell: the string form (run by /bin/sh -c) may use only bootlace's own
// {{staged}} and {{path}}, shell-quoted; the argv form renders each element with the full view into one argument each,
// and its first element, the program, is literal. Values reach commands as environment variables (files/command-env).
// Pure; the schema refuses with commandProblems, the files action renders with renderCommand.
import Mustache from "mustache";
import { ConfigError } from "../core/errors";
import type { TemplateView } from "./render";
import { render } from "./render";

/** A command as configured: a string for /bin/sh, or an argv list. */
export type CommandSpec = string | string[];

/** Which command: `check` runs on the staged file ({{staged}}); `on_change` after all files are written. */
export type CommandKey = "check" | "on_change";

/** The variables of bootlace's own a string command may use, by key: paths bootlace chose, never values. */
export const OWN_VARIABLES: Record<CommandKey, readonly string[]> = {
  check: ["staged", "path"],
  on_change: ["path"],
};

export interface CommandProblem {
  /** Under the command's key: [] for the command itself, [i] for argv element i. */
  path: number[];
  message: string;
}

/** Each tag of a template as written ({{x}}, {{{x}}}, {{& x}}, {{#x}}, {{^x}}, {{> x}}), nested sections included. */
function tagsOf(template: string): { written: string; type: string; name: string }[] {
  const found: { written: string; type: string; name: string }[] = [];
  const walk = (tokens: unknown[][]): void => {
    for (const t of tokens) {
      const type = t[0] as string;
      if (type !== "text" && type !== "!") {
        const name = String(t[1]);
        const written = type === "name" ? `{{${name}}}` : type === "&" ? `{{{${name}}}}` : `{{${type}${name}}}`;
        found.push({ written, type, name });
      }
      if (Array.isArray(t[4])) walk(t[4] as unknown[][]);
    }
  };
  walk(Mustache.parse(template));
  return found;
}

/** BOOTLACE_<NAME> for each instance variable, by its template name (instance.<name>). */
export const INSTANCE_ENV: Record<keyof TemplateView["instance"], string> = {
  id: "BOOTLACE_INSTANCE_ID",
  region: "BOOTLACE_REGION",
  az: "BOOTLACE_AZ",
  private_ipv4: "BOOTLACE_PRIVATE_IPV4",
  public_ipv4: "BOOTLACE_PUBLIC_IPV4",
  elastic_ip: "BOOTLACE_ELASTIC_IP",
  public_dns: "BOOTLACE_PUBLIC_DNS",
  mac: "BOOTLACE_MAC",
  hostname: "BOOTLACE_HOSTNAME",
  vpc_id: "BOOTLACE_VPC_ID",
  subnet_id: "BOOTLACE_SUBNET_ID",
};

/** The environment variable that carries what a template variable names, for the refusal's hint. */
function envHint(name: string): string {
  const [head, key] = name.split(".");
  const variable = (env: string) => `the environment variable "$${env}"`;
  if (head === "tags" && key !== undefined) return variable(tagEnvName(key));
  if (head === "peers" && key !== undefined) return `${variable(`BOOTLACE_PEERS_${envSuffix(key)}`)} (the addresses)`;
  if (head === "instance" && key !== undefined && key in INSTANCE_ENV) {
    return variable(INSTANCE_ENV[key as keyof typeof INSTANCE_ENV]);
  }
  return "the BOOTLACE_* environment variables";
}

/** A tag key, or a peer set's name, as an environment name's suffix: uppercase, anything but [A-Z0-9_] as "_". */
export function envSuffix(key: string): string {
  return [...key.toUpperCase()].map((c) => (/^[A-Z0-9_]$/.test(c) ? c : "_")).join("");
}

/** The environment variable that carries the instance's tag `key`. */
export const tagEnvName = (key: string): string => `BOOTLACE_TAG_${envSuffix(key)}`;

/**
 * What is wrong with a command of `key`, each with where under the key. A string may use only OWN_VARIABLES[key], in
 * the quoted {{x}} form; an argv list's first element must be literal text (no template tag) and not empty; on_change
 * has no staged file.
 */
export function commandProblems(command: CommandSpec, key: CommandKey): CommandProblem[] {
  if (typeof command === "string") return stringProblems(command, key);
  const problems: CommandProblem[] = [];
  command.forEach((element, i) => {
    let tags;
    try {
      tags = tagsOf(element);
    } catch (error) {
      problems.push({ path: [i], message: `not a valid template: ${(error as Error).message}` });
      return;
    }
    if (i === 0 && (tags.length > 0 || Mustache.render(element, {}) !== element)) {
      problems.push({
        path: [0],
        message:
          `the program may not come from a value: write it literally (got ${JSON.stringify(element)}); ` +
          `values go in the later elements, one argument each`,
      });
    } else if (i === 0 && element === "") {
      problems.push({ path: [0], message: "the program is empty" });
    }
    if (key === "on_change" && tags.some((t) => t.name === "staged")) {
      problems.push({
        path: [i],
        message: "{{staged}} exists only in check: on_change runs after the file is written",
      });
    }
  });
  return problems;
}

function stringProblems(command: string, key: CommandKey): CommandProblem[] {
  let tags;
  try {
    tags = tagsOf(command);
  } catch (error) {
    return [{ path: [], message: `not a valid template: ${(error as Error).message}` }];
  }
  const own = OWN_VARIABLES[key];
  const allowed = own.map((v) => `{{${v}}}`).join(" and ");
  const problems: CommandProblem[] = [];
  for (const t of tags) {
    if (t.type === "name" && own.includes(t.name)) continue;
    if (own.includes(t.name)) {
      problems.push({
        path: [],
        message: `${t.written}: write {{${t.name}}}, which bootlace shell-quotes (${t.written} would not be)`,
      });
    } else if (t.name === "staged") {
      problems.push({ path: [], message: "{{staged}} exists only in check: on_change runs after the file is written" });
    } else {
      const example = t.type === "name" ? t.written : `{{${t.name}}}`;
      problems.push({
        path: [],
        message:
          `${t.written} would put a value into a shell command: a string command may use only ${allowed}. ` +
          `Use the argv form (a list such as ["/usr/local/bin/tool", "${example}"]: each element one argument, no ` +
          `shell) or ${envHint(t.name)}`,
      });
    }
  }
  return problems;
}

/** Every template a command holds (argv elements, or the string), for what a files entry uses. */
export function commandTemplates(command: CommandSpec | undefined): string[] {
  if (command === undefined) return [];
  return typeof command === "string" ? [command] : command;
}

/**
 * Whether a command's text names the environment variables of peers or of the addresses the elastic_ip action changes:
 * its file then waits for those actions (and, in a warm pool, for InService), as a template naming them would. Read
 * from the text, like the templates: a script the command calls is not looked into.
 */
export function commandMentions(command: CommandSpec | undefined): { peers: boolean; elasticIp: boolean } {
  const text = commandTemplates(command).join("\n");
  return {
    peers: /BOOTLACE_PEERS_/.test(text),
    elasticIp: /BOOTLACE_(ELASTIC_IP|PUBLIC_IPV4|PUBLIC_DNS)\b/.test(text),
  };
}

/** The view a command renders with: the file's view and bootlace's own paths. */
export type CommandView = TemplateView & { path: string; staged?: string };

/** shell-quoting for a string command's {{staged}} and {{path}}: one shell word whatever the path holds. */
export function shellQuote(value: unknown): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/**
 * The argv to spawn. A string becomes ["/bin/sh", "-c", text] with only {{staged}}/{{path}} rendered (shell-quoted;
 * the schema refused anything else, and the view it sees has nothing else). An argv list is rendered element by
 * element with the whole view; an element holding NUL after rendering (no program can receive it) is refused naming
 * the values it used. `at` is the key path (files.N.check).
 */
export function renderCommand(command: CommandSpec, view: CommandView, at: string): string[] {
  if (typeof command === "string") {
    const own = { path: view.path, ...(view.staged !== undefined && { staged: view.staged }) };
    return ["/bin/sh", "-c", Mustache.render(command, own, {}, { escape: shellQuote })];
  }
  return command.map((element, i) => {
    const rendered = i === 0 ? element : render(element, view);
    if (rendered.includes("\0")) {
      throw new ConfigError(
        `renders with a NUL character (from ${nulCarriers(element, view)}), which no argument can hold`,
        undefined,
        `${at}.${i}`,
      );
    }
    return rendered;
  });
}

/** Which values put a NUL into an element: its variables by name, else (inside a section) the tags holding one. */
function nulCarriers(element: string, view: CommandView): string {
  const context = new Mustache.Context(view);
  const named = tagsOf(element)
    .map((t) => t.name)
    .filter((name) => String(context.lookup(name) ?? "").includes("\0"))
    .map((name) => `{{${name}}}`);
  if (named.length > 0) return named.join(", ");
  const withNul = (tags: Record<string, string>) => Object.keys(tags).filter((k) => tags[k]!.includes("\0"));
  const tags = [
    ...withNul(view.tags).map((k) => `this instance's tag ${JSON.stringify(k)}`),
    ...Object.entries(view.peers).flatMap(([set, peers]) =>
      peers.flatMap((p) => withNul(p.tags).map((k) => `tag ${JSON.stringify(k)} of ${p.id} in peers.${set}`)),
    ),
  ];
  return tags.length > 0 ? tags.join(", ") : "a value it uses";
}
