// The renderer of files: Mustache's parser, bootlace's own walk over its tokens. Every value that lands is handed to a
// check with its kind and where it came from (this instance or which peer), runs through the escaper of the section
// it is in ({{#escape.php}}, {{#escape.shell}}), and is remembered where it landed, so a file's own rules (/etc/hosts)
// can check fields made of values. Names resolve as the Mustache spec says (first part on the section stack, the rest
// from there), so a peer's {{tags.X}} never falls back to this instance's tag X. Pure.
import Mustache from "mustache";
import type { PeerView, TemplateView } from "./render";
import type { EscaperName, Kind, Shape } from "./shape";
import { rootShape } from "./shape";

/** Where a value came from: this instance (its facts, its tags) or one peer of a set. */
export type Origin = { of: "instance" } | { of: "peer"; set: string; peer: PeerView };

/** One value about to land. */
export interface Use {
  /** The variable as written ({{tags.Env}} → "tags.Env"). */
  name: string;
  value: string;
  kind: Kind;
  origin: Origin;
  /** The tag key, when the value is a tag. */
  tag?: string;
  /** The field (ip, name, hostname…), when the value is not a tag. */
  field?: string;
  escaper?: EscaperName;
}

/** A value the template uses that this instance or a peer does not have ({{tags.X}} without a tag X). */
export interface Missing {
  name: string;
  origin: Origin;
  /** "tag Env", "peers.db.2". */
  what: string;
}

/** Where values landed in the output: [start, end) holds these uses (a shell word holds all of its section's). */
export interface Span {
  start: number;
  end: number;
  uses: Use[];
}

export interface Rendered {
  text: string;
  spans: Span[];
  missing: Missing[];
}

export interface RenderOptions {
  /** Sees every value before it lands (records what is wrong; the caller decides who fails). */
  check: (use: Use) => void;
  /** Applied to each value last, after its escaper (replace's `with`: `$` kept literal). */
  literal?: (text: string) => string;
}

/** PHP single-quoted string: only \\ and \' are escapes there. */
export function escapePhp(value: string): string {
  return value.replace(/[\\']/g, (c) => `\\${c}`);
}

/** One shell word: single-quoted, each ' closed, escaped and reopened. */
export function shellWord(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

const escapers: Record<EscaperName, { value: (v: string) => string; whole: (t: string) => string }> = {
  php: { value: escapePhp, whole: (t) => t },
  shell: { value: (v) => v, whole: shellWord },
};

type Token = [string, string, number, number, Token[]?, number?];

interface Frame {
  value: unknown;
  shape: Shape;
  origin: Origin;
}

type Lookup =
  | { found: true; value: unknown; shape: Shape; origin: Origin; last: string; parent: Shape }
  | { found: false; missing?: Missing };

const has = (o: unknown, k: string): boolean =>
  typeof o === "object" && o !== null && Object.prototype.hasOwnProperty.call(o, k);

function lookup(name: string, stack: Frame[]): Lookup {
  const segments = name.split(".");
  const first = segments[0]!;
  const start = [...stack].reverse().find((f) => f.shape.type === "object" && has(f.shape.fields, first));
  // The static check (templateProblems) refuses these before anything renders: reaching one is a bug.
  if (start === undefined) throw new Error(`unknown variable {{${name}}}`);
  let frame: Frame = start;
  let parent: Shape = start.shape;
  for (const segment of segments) {
    const { value, shape, origin } = frame;
    parent = shape;
    switch (shape.type) {
      case "object":
        if (!has(shape.fields, segment)) throw new Error(`unknown variable {{${name}}}`);
        if (!has(value, segment)) return { found: false };
        frame = { value: (value as Record<string, unknown>)[segment], shape: shape.fields[segment]!, origin };
        break;
      case "map":
        if (!has(value, segment)) return { found: false, missing: { name, origin, what: `tag ${segment}` } };
        frame = {
          value: (value as Record<string, unknown>)[segment],
          shape: { type: "value", kind: shape.kind },
          origin,
        };
        break;
      case "list": {
        const list = Array.isArray(value) ? (value as unknown[]) : [];
        const i = Number(segment);
        if (!Number.isInteger(i) || i < 0 || i >= list.length) {
          const what = `${shape.what}.${segment} (${shape.what} has ${list.length})`;
          return { found: false, missing: { name, origin, what } };
        }
        const element = list[i];
        const peerOrigin: Origin =
          shape.peerSet !== undefined ? { of: "peer", set: shape.peerSet, peer: element as PeerView } : origin;
        frame = { value: element, shape: shape.of, origin: peerOrigin };
        break;
      }
      case "value":
        throw new Error(`unknown variable {{${name}}}`);
    }
  }
  return { found: true, ...frame, last: segments[segments.length - 1]!, parent };
}

class Output {
  text = "";
  spans: Span[] = [];

  add(text: string, uses?: Use[]): void {
    if (uses && uses.length > 0)
      this.spans.push({ start: this.text.length, end: this.text.length + text.length, uses });
    this.text += text;
  }

  /** A sub-render's output, its spans moved to where it lands. */
  append(sub: Output): void {
    const at = this.text.length;
    this.spans.push(...sub.spans.map((s) => ({ ...s, start: s.start + at, end: s.end + at })));
    this.text += sub.text;
  }
}

/** Renders a files template: values checked, escaped by their section, their places remembered. */
export function renderValues(template: string, view: TemplateView, options: RenderOptions): Rendered {
  const missing: Missing[] = [];
  const shape = rootShape({ peerSets: Object.keys(view.peers), escapers: true });
  const literal = options.literal ?? ((t: string) => t);

  const walk = (tokens: Token[], stack: Frame[], escaper: EscaperName | undefined, out: Output): void => {
    for (const t of tokens) {
      const [type, name] = t;
      const children = t[4] ?? [];
      switch (type) {
        case "text":
          out.add(name);
          break;
        case "name":
        case "&": {
          const found = lookup(name, stack);
          if (!found.found) {
            if (found.missing) missing.push(found.missing);
            break;
          }
          if (found.shape.type !== "value") throw new Error(`{{${name}}} is not a value`);
          const use: Use = {
            name,
            value: typeof found.value === "string" ? found.value : "",
            kind: found.shape.kind,
            origin: found.origin,
            ...(found.parent.type === "map" ? { tag: found.last } : { field: found.last }),
            ...(escaper && { escaper }),
          };
          options.check(use);
          out.add(literal(escaper ? escapers[escaper].value(use.value) : use.value), [use]);
          break;
        }
        case "#": {
          if (
            name.startsWith("escape.") &&
            !stack.some((f) => f.shape.type === "object" && has(f.shape.fields, "escape"))
          ) {
            const which = name.slice("escape.".length) as EscaperName;
            if (!has(escapers, which) || escaper) throw new Error(`{{#${name}}}: not an escaper here`);
            const sub = new Output();
            walk(children, stack, which, sub);
            const uses = sub.spans.flatMap((s) => s.uses);
            if (escapers[which].whole === escapers.php.whole) out.append(sub);
            else out.add(escapers[which].whole(sub.text), uses);
            break;
          }
          const found = lookup(name, stack);
          if (!found.found || !found.value) break;
          if (found.shape.type === "list") {
            for (const item of found.value as unknown[]) {
              const origin: Origin =
                found.shape.peerSet !== undefined
                  ? { of: "peer", set: found.shape.peerSet, peer: item as PeerView }
                  : found.origin;
              walk(children, [...stack, { value: item, shape: found.shape.of, origin }], escaper, out);
            }
          } else {
            walk(children, [...stack, { value: found.value, shape: found.shape, origin: found.origin }], escaper, out);
          }
          break;
        }
        case "^": {
          const found = lookup(name, stack);
          const empty =
            !found.found || !found.value || (Array.isArray(found.value) && (found.value as unknown[]).length === 0);
          if (empty) walk(children, stack, escaper, out);
          break;
        }
        case ">":
          throw new Error(`{{> ${name}}}: partials are not supported`);
        default:
          break; // comments, delimiter changes
      }
    }
  };

  const out = new Output();
  walk(Mustache.parse(template) as Token[], [{ value: view, shape, origin: { of: "instance" } }], undefined, out);
  return { text: out.text, spans: out.spans, missing };
}
