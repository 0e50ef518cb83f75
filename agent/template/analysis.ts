// What a template uses, read without rendering it: the variables it names, and from them which peer fields, tags and
// peer sets a file's templates may put in it. Pure; the schema checks peer sets with it, the files action filters
// peers with it.
import Mustache from "mustache";
import type { CommandSpec } from "./command";
import { commandTemplates } from "./command";
import type { Scope, Shape } from "./shape";
import { escaperNames, offers, rootShape } from "./shape";

/** Every variable a template refers to ({{a.b}}, {{{a}}}, sections), in dotted form. Throws on a bad template. */
export function templateNames(template: string): string[] {
  const names: string[] = [];
  const walk = (tokens: unknown[][]): void => {
    for (const t of tokens) {
      if (["name", "&", "#", "^"].includes(t[0] as string)) names.push(t[1] as string);
      if (Array.isArray(t[4])) walk(t[4] as unknown[][]);
    }
  };
  walk(Mustache.parse(template));
  return names;
}

/** The templates of a files entry's content written in the entry itself (a whole-file template is read from its file). */
export function contentTemplates(f: {
  block?: string | undefined;
  replace?: { with: string }[] | undefined;
}): string[] {
  return [f.block ?? "", ...(f.replace ?? []).map((r) => r.with)];
}

/** Every template written in a files entry itself: its content's, then its commands' (argv elements, or the string). */
export function inlineTemplates(f: {
  block?: string | undefined;
  replace?: { with: string }[] | undefined;
  check?: CommandSpec | undefined;
  on_change?: CommandSpec | undefined;
}): string[] {
  return [...contentTemplates(f), ...commandTemplates(f.check), ...commandTemplates(f.on_change)];
}

const peerFields = ["id", "ip", "name", "az"] as const;
type PeerField = (typeof peerFields)[number];

/** Which values a file's templates may put in it. Over-approximated: a name is counted wherever it appears. */
export interface FieldUse {
  fields: Set<PeerField>;
  /** Tag keys used ({{tags.Env}}), of peers or of the instance itself. */
  tags: Set<string>;
  /** {{#tags}}...: every tag may land in the file. */
  allTags: boolean;
  /** The peer sets named (peers.<name>). */
  peerSets: Set<string>;
  /** {{#peers}}...: every set may be used. */
  allPeerSets: boolean;
}

export function fieldUse(templates: string[]): FieldUse {
  const use: FieldUse = { fields: new Set(), tags: new Set(), allTags: false, peerSets: new Set(), allPeerSets: false };
  for (const name of templates.flatMap(templateNames)) {
    const segments = name.split(".");
    if (segments[0] === "peers") {
      if (segments[1] === undefined) use.allPeerSets = true;
      else use.peerSets.add(segments[1]);
    }
    segments.forEach((s, i) => {
      if ((peerFields as readonly string[]).includes(s)) use.fields.add(s as PeerField);
      if (s !== "tags") return;
      const key = segments[i + 1];
      if (key === undefined) use.allTags = true;
      else use.tags.add(key);
    });
  }
  return use;
}

// ---- the variables a template names, checked against the view's shape ------------------------------------------

type Token = [string, string, number, number, Token[]?, number?];

type Resolved = { shape: Shape } | { problem: string };

/** A name resolved as the Mustache spec does it: the first part on the section stack, the rest from there. */
function resolveShape(name: string, stack: Shape[], scope: Scope): Resolved {
  const unknown = (why: string): Resolved => ({ problem: `unknown variable {{${name}}}: ${why}` });
  const segments = name.split(".");
  const first = segments[0]!;
  const start = [...stack]
    .reverse()
    .find((s) => s.type === "object" && Object.prototype.hasOwnProperty.call(s.fields, first));
  if (start === undefined || start.type !== "object") {
    const root = stack[0]!;
    if (first === "peers" && scope.peerSets === undefined) return unknown("peers are not available here");
    return unknown(`no variable ${first} (variables: ${offers(root)}${stack.length > 1 ? ", and the section's" : ""})`);
  }
  let shape: Shape = start.fields[first]!;
  let path = first;
  for (const segment of segments.slice(1)) {
    switch (shape.type) {
      case "object":
        if (!Object.prototype.hasOwnProperty.call(shape.fields, segment)) {
          if (shape.what === "peers") {
            return unknown(`peers.${segment} is not configured (peers: ${offers(shape)})`);
          }
          return unknown(`${shape.what} has no ${segment} (it has ${offers(shape)})`);
        }
        shape = shape.fields[segment]!;
        break;
      case "map":
        shape = { type: "value", kind: shape.kind };
        break;
      case "list":
        if (!/^(0|[1-9][0-9]{0,5})$/.test(segment)) {
          return unknown(`${path} is a list: ${path}.0, ${path}.1… or a section {{#${path}}}…{{/${path}}}`);
        }
        shape = shape.of;
        break;
      case "value":
        return unknown(`${path} is a value, with no .${segment}`);
    }
    path = `${path}.${segment}`;
  }
  return { shape };
}

/**
 * What is wrong with a template's variables in a scope: unknown variables, escapers misused, sections the renderer
 * does not support. Empty when it may be rendered. Throws when the template does not parse.
 */
export function templateProblems(template: string, scope: Scope): string[] {
  const problems: string[] = [];
  const walk = (tokens: Token[], stack: Shape[], escaper: string | undefined): void => {
    for (const t of tokens) {
      const [type, name] = t;
      const children = t[4] ?? [];
      if (type === ">") problems.push(`{{> ${name}}}: partials are not supported`);
      if (type !== "name" && type !== "&" && type !== "#" && type !== "^") continue;
      const isSection = type === "#" || type === "^";
      if (name === ".") {
        problems.push(`{{.}}: name the variable instead`);
        continue;
      }
      if (
        name.split(".")[0] === "escape" &&
        !stack.some((s) => s.type === "object" && Object.prototype.hasOwnProperty.call(s.fields, "escape"))
      ) {
        const escaperName = name.slice("escape.".length);
        const bad = !scope.escapers
          ? `{{#${name}}}: escapers apply in files only`
          : !isSection
            ? `{{${name}}}: ${name} is an escaper, used as a section: {{#${name}}}…{{/${name}}}`
            : type === "^"
              ? `{{^${name}}}: an escaper is not a condition; use {{#${name}}}…{{/${name}}}`
              : !(escaperNames as readonly string[]).includes(escaperName)
                ? `{{#${name}}}: unknown escaper ${name} (escapers: ${escaperNames.map((e) => `escape.${e}`).join(", ")})`
                : escaper !== undefined
                  ? `{{#${name}}}: escapers do not nest (inside escape.${escaper})`
                  : undefined;
        if (bad) problems.push(bad);
        else walk(children, stack, escaperName);
        continue;
      }
      const resolved = resolveShape(name, stack, scope);
      if ("problem" in resolved) {
        problems.push(resolved.problem);
        continue;
      }
      const { shape } = resolved;
      if (!isSection) {
        if (shape.type !== "value") {
          problems.push(
            `{{${name}}} is ${shape.type === "list" ? "a list" : "not a value"}: ` +
              `use a section, {{#${name}}}…{{/${name}}}, and its fields`,
          );
        }
        continue;
      }
      if (shape.type === "map") {
        problems.push(`{{#${name}}}: a section over every tag is not supported; name the tag, {{#${name}.Env}}`);
        continue;
      }
      const inner = type === "^" ? stack : [...stack, shape.type === "list" ? shape.of : shape];
      walk(children, inner, escaper);
    }
  };
  walk(Mustache.parse(template) as Token[], [rootShape(scope)], undefined);
  return [...new Set(problems)];
}
