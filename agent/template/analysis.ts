// What a template uses, read without rendering it: the variables it names, and from them which peer fields, tags and
// peer sets a file's templates may put in it. Pure; the schema checks peer sets with it, the files action filters
// peers with it.
import Mustache from "mustache";
import type { CommandSpec } from "./command";
import { commandTemplates } from "./command";

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
