// `## template: jinja` user-data, rendered the way cloud-init renders it as far as that can be done offline: text,
// `{% raw %}…{% endraw %}` and `{# comments #}` exactly (cloud-init renders with trim_blocks: the line break after
// `{% endraw %}` and after `#}` goes; the one after `{% raw %}` stays); `{{ expressions }}` become placeholders,
// since only cloud-init has the instance data they read; any other statement (`{% if %}`, `{% set %}`...) makes the
// document unreadable offline. What bootlace does with placeholders is the caller's business.

/** A `{{ … }}` cloud-init renders from its instance data, standing in the rendered text as `placeholder`. */
export interface JinjaExpression {
  placeholder: string;
  /** As written, `{{ v1.region }}`. */
  text: string;
  /** Its line in the user-data document (the header is line 1). */
  line: number;
}

export type Rendered =
  | {
      /** The rendered text: what follows the header line, with placeholders for the expressions. */
      text: string;
      /** The line in the user-data document that a line of the rendered text comes from. */
      lineOf: (renderedLine: number) => number;
      expressions: JinjaExpression[];
    }
  | { why: string; line: number };

const HEADER = /^##\s*template:(.*)$/i;
const TAG = /\{\{|\{%|\{#/g;
const RAW = /^\{%\s*raw\s*%\}/;
const ENDRAW = /\{%\s*endraw\s*%\}\n?/;

/** The placeholder for expression i: a plain word, so it reads as (part of) any YAML scalar. */
export const placeholder = (i: number): string => `__cloud_init_jinja_${i}__`;
const PLACEHOLDER = /__cloud_init_jinja_(\d+)__/;

/** The first expression whose placeholder appears in text, if any. */
export function expressionIn(text: string, expressions: JinjaExpression[]): JinjaExpression | undefined {
  const m = PLACEHOLDER.exec(text);
  return m ? expressions[Number(m[1])] : undefined;
}

/** Renders a document whose first line is `## template: jinja` (any case, as cloud-init's templater reads it). */
export function renderJinja(document: string): Rendered {
  const newline = document.indexOf("\n");
  const header = (newline < 0 ? document : document.slice(0, newline)).replace(/\r$/, "");
  const kind = HEADER.exec(header)?.[1]?.trim().toLowerCase();
  if (kind !== "jinja") return { why: `the header asks for a template type cloud-init does not render`, line: 1 };
  const body = newline < 0 ? "" : document.slice(newline + 1);
  // Offsets in body → document lines (the header is line 1).
  const lineStarts = [0];
  for (let i = body.indexOf("\n"); i >= 0; i = body.indexOf("\n", i + 1)) lineStarts.push(i + 1);
  const lineAt = (offset: number): number => {
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((lineStarts[mid] ?? 0) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 2;
  };

  let out = "";
  const outLines = [lineAt(0)];
  const emit = (text: string, from: number): void => {
    for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) outLines.push(lineAt(from + i + 1));
    out += text;
  };
  const expressions: JinjaExpression[] = [];
  let at = 0;
  for (;;) {
    TAG.lastIndex = at;
    const tag = TAG.exec(body);
    if (!tag) break;
    emit(body.slice(at, tag.index), at);
    const rest = body.slice(tag.index);
    const line = lineAt(tag.index);
    if (tag[0] === "{#") {
      const end = /#\}\n?/.exec(rest);
      if (!end) return { why: "a {# comment #} that is never closed", line };
      at = tag.index + end.index + end[0].length;
    } else if (tag[0] === "{%") {
      const raw = RAW.exec(rest);
      if (!raw) {
        const statement = /^\{%.*?(%\}|$)/m.exec(rest)?.[0] ?? "{%";
        return { why: `${statement} is a jinja statement, which only cloud-init can render`, line };
      }
      const end = ENDRAW.exec(rest.slice(raw[0].length));
      if (!end) return { why: "{% raw %} without {% endraw %}", line };
      const start = tag.index + raw[0].length;
      emit(body.slice(start, start + end.index), start);
      at = start + end.index + end[0].length;
    } else {
      const end = rest.indexOf("}}");
      if (end < 0) return { why: "a {{ that is never closed", line };
      const text = rest.slice(0, end + 2);
      if (/^\{\{-|-\}\}$/.test(text)) {
        return { why: `${text} strips the whitespace around it, which only cloud-init can render`, line };
      }
      const expression = { placeholder: placeholder(expressions.length), text, line };
      expressions.push(expression);
      out += expression.placeholder;
      at = tag.index + text.length;
    }
  }
  emit(body.slice(at), at);
  return { text: out, lineOf: (n) => outLines[n - 1] ?? outLines[outLines.length - 1] ?? 1, expressions };
}

// bootlace's own templates are Mustache: `{{instance.id}}`, `{{#peers.db}}`, `{{/peers.db}}`, `{{tags.Env}}`.
const MUSTACHE = /^\{\{\s*([#/^!>&{=]|(instance|tags|peers|staged|path|ip|id|name|az)\b)/;

/** Whether a `{{ … }}` is one of bootlace's Mustache templates (cloud-init's jinja would render, or drop, it). */
export function isBootlaceTemplate(expression: JinjaExpression): boolean {
  return MUSTACHE.test(expression.text);
}
