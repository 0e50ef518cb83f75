// Pure text edits of managed files — bootlace's marked blocks and regex line edits — with no filesystem here: the
// rest of a file is kept byte for byte because lines are handled with their own terminators and joined back as read.

export type EditResult = { ok: true; content: string } | { ok: false; problem: string };

export interface BlockId {
  /** Names the block in its marker lines. */
  name: string;
  /** What starts a comment line in this file ("#", "//", ";"...). */
  comment: string;
}

export interface BlockSpec extends BlockId {
  /** The rendered lines between the markers. */
  body: string;
  /** Where a block that is not in the file yet goes; an existing block stays where it is. */
  position: "top" | "bottom";
}

export function beginMarker(b: BlockId): string {
  return `${b.comment} BEGIN bootlace block ${b.name} (managed by bootlace: edits inside are overwritten)`;
}

export function endMarker(b: BlockId): string {
  return `${b.comment} END bootlace block ${b.name}`;
}

/** The lines of a text, each with its own terminator ("\n", "\r\n", or none for an unterminated last line). */
export function splitLines(text: string): string[] {
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** A line without its terminator. */
function bare(line: string): string {
  return line.replace(/\r?\n$/, "");
}

const isBegin = (line: string, b: BlockId): boolean => {
  const text = bare(line).trimEnd();
  const head = `${b.comment} BEGIN bootlace block ${b.name}`;
  return text === head || text.startsWith(`${head} `);
};

const isEnd = (line: string, b: BlockId): boolean => bare(line).trimEnd() === endMarker(b);

type Found = { kind: "absent" } | { kind: "found"; start: number; end: number } | { kind: "damaged"; problem: string };

/** Where the block is; a damaged block (a marker without its partner, or twice) is never guessed at. */
function findBlock(lines: string[], b: BlockId): Found {
  const begins = lines.flatMap((l, i) => (isBegin(l, b) ? [i] : []));
  const ends = lines.flatMap((l, i) => (isEnd(l, b) ? [i] : []));
  if (begins.length === 0 && ends.length === 0) return { kind: "absent" };
  const where = (i: number | undefined) => (i === undefined ? "none" : `line ${i + 1}`);
  if (begins.length !== 1 || ends.length !== 1 || ends[0]! < begins[0]!) {
    return {
      kind: "damaged",
      problem:
        `the markers of bootlace block ${b.name} are damaged (BEGIN at ${begins.map((i) => where(i)).join(", ") || "none"}, ` +
        `END at ${ends.map((i) => where(i)).join(", ") || "none"}); fix them by hand, bootlace will not guess`,
    };
  }
  return { kind: "found", start: begins[0]!, end: ends[0]! };
}

/** The file's own line ending: CRLF if it uses it anywhere, else LF. */
function eolOf(text: string): string {
  return text.includes("\r\n") ? "\r\n" : "\n";
}

function blockLines(spec: BlockSpec, eol: string): string[] | { problem: string } {
  const body = spec.body.replace(/\r\n/g, "\n");
  const inner = body === "" ? [] : body.replace(/\n$/, "").split("\n");
  const clash = inner.find((l) => isBegin(l, spec) || isEnd(l, spec));
  if (clash !== undefined) return { problem: `the rendered block contains its own marker line: ${clash}` };
  return [beginMarker(spec), ...inner, endMarker(spec)].map((l) => l + eol);
}

/** The file with the block set to spec.body: replaced where it is, else added at spec.position. */
export function applyBlock(content: string, spec: BlockSpec): EditResult {
  const lines = splitLines(content);
  const eol = eolOf(content);
  const block = blockLines(spec, eol);
  if (!Array.isArray(block)) return { ok: false, problem: block.problem };
  const found = findBlock(lines, spec);
  switch (found.kind) {
    case "damaged":
      return { ok: false, problem: found.problem };
    case "found":
      lines.splice(found.start, found.end - found.start + 1, ...block);
      return { ok: true, content: lines.join("") };
    case "absent": {
      if (spec.position === "top") return { ok: true, content: [...block, ...lines].join("") };
      // A last line without a terminator gets one, or the block's first marker would run on from it.
      const last = lines.length - 1;
      if (last >= 0 && !lines[last]!.endsWith("\n")) lines[last] += eol;
      return { ok: true, content: [...lines, ...block].join("") };
    }
  }
}

/** The file without the block (unchanged when it is not there). */
export function removeBlock(content: string, b: BlockId): EditResult {
  const lines = splitLines(content);
  const found = findBlock(lines, b);
  if (found.kind === "damaged") return { ok: false, problem: found.problem };
  if (found.kind === "found") lines.splice(found.start, found.end - found.start + 1);
  return { ok: true, content: lines.join("") };
}

export interface LineEdit {
  match: RegExp;
  /** Replacement as String.prototype.replace takes it: $1, $& refer to the match ($$ is a literal '$'). */
  with: string;
}

export interface ReplaceResult {
  content: string;
  /** Per edit, how many lines it matched: 0 is reported, never silently ignored. */
  matched: number[];
}

/**
 * Each edit applied, in order, to every line it matches (all occurrences in the line); terminators are kept. onEdit is
 * told which edit starts, so a caller that stops a pattern running too long can name it.
 *
 * Self-contained (it calls nothing else of this module, names no helper): its source also runs as the body of the
 * worker that bounds configured patterns in time (replace-worker.ts).
 */
export function applyReplace(content: string, edits: LineEdit[], onEdit?: (edit: number) => void): ReplaceResult {
  const lines = content.match(/[^\n]*\n|[^\n]+$/g) ?? [];
  const ends = lines.map((line) => /\r?\n$/.exec(line)?.[0] ?? "");
  const texts = lines.map((line, j) => line.slice(0, line.length - ends[j]!.length));
  const matched = edits.map(() => 0);
  // Edit by edit over all lines: the same result as line by line (lines never affect each other), and one edit at a
  // time is what onEdit reports.
  edits.forEach((e, i) => {
    if (onEdit) onEdit(i);
    const re = new RegExp(e.match.source, e.match.flags.includes("g") ? e.match.flags : `${e.match.flags}g`);
    texts.forEach((text, j) => {
      re.lastIndex = 0;
      if (!re.test(text)) return;
      matched[i]! += 1;
      re.lastIndex = 0;
      texts[j] = text.replace(re, e.with);
    });
  });
  return { content: texts.map((text, j) => text + ends[j]!).join(""), matched };
}

/** Lines added and removed between two texts (as multisets of lines): a short, honest summary of a change. */
export function lineChanges(before: string, after: string): { added: number; removed: number } {
  const count = new Map<string, number>();
  for (const l of splitLines(before)) count.set(bare(l), (count.get(bare(l)) ?? 0) + 1);
  let added = 0;
  for (const l of splitLines(after)) {
    const n = count.get(bare(l)) ?? 0;
    if (n > 0) count.set(bare(l), n - 1);
    else added += 1;
  }
  const removed = [...count.values()].reduce((a, b) => a + b, 0);
  return { added, removed };
}
