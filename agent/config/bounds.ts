// What reading configuration may cost: the size, nesting and YAML node limits, each checked before the work it bounds,
// so no input can keep a boot busy or grow its memory past them. docs/configuration.md ("Limits") says why each is
// what it is.
import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { CST, Lexer, Parser } from "yaml";
import { ConfigError } from "../core/errors";

const KiB = 1024;
const MiB = 1024 * KiB;

export const limits = {
  /** Raw user-data, as IMDS serves it: EC2 refuses more at launch ("limited to 16 KB, in raw form"). */
  userDataBytes: 16 * KiB,
  /** A baked configuration file (bootlace.yaml, conf.d/*.yaml), a --config file, a file given to validate. */
  configFileBytes: 1 * MiB,
  /** Everything gzip decompression yields in one user-data, all layers and parts together. */
  inflatedBytes: 1 * MiB,
  /** gzip inside gzip along one path (the whole user-data, then a part); cloud-init itself decompresses once. */
  gzipDepth: 2,
  /** multipart inside multipart (a #cloud-config-archive counts as one): the top-level message is depth 1. */
  mimeDepth: 4,
  /** Parts in one user-data, every multipart and archive together. */
  mimeParts: 100,
  /** YAML nodes (scalars, aliases, collections and their entries) in one document, counted before it is parsed. */
  yamlNodes: 5_000,
  /** The same, over every YAML document of one user-data. */
  yamlNodesPerUserData: 10_000,
  /** Collections inside collections, aliases expanded. */
  yamlDepth: 64,
  /** Alias uses in one document (the `yaml` library's maxAliasCount default): an alias bomb stops here. */
  yamlAliases: 100,
  /** `{{ … }}` expressions in one jinja template. */
  jinjaExpressions: 1000,
  /** Keys in one BOOTLACE_SET_ path (`a__b__c`). */
  setPathSegments: 32,
} as const;

/** What is left to spend while reading one user-data: shared by every part, layer and document in it. */
export interface Budget {
  inflated: number;
  yamlNodes: number;
  parts: number;
}

export function userDataBudget(): Budget {
  return { inflated: limits.inflatedBytes, yamlNodes: limits.yamlNodesPerUserData, parts: limits.mimeParts };
}

export const formatBytes = (n: number): string =>
  n >= MiB && n % MiB === 0 ? `${n / MiB} MiB` : n >= KiB && n % KiB === 0 ? `${n / KiB} KiB` : `${n} bytes`;

// The lexer tokens that make a node or an entry: a scalar, an alias, a flow collection, a block entry's indicator.
const NODE_TOKENS = new Set<string>([
  "scalar",
  "single-quoted-scalar",
  "double-quoted-scalar",
  "block-scalar-header",
  "alias",
  "flow-seq-start",
  "flow-map-start",
  "seq-item-ind",
  "explicit-key-ind",
  "map-value-ind",
]);

/**
 * Whether YAML text is within the limits, checked before anything is built from it: its size, then its nodes counted
 * by the lexer (which holds nothing and stops at the limit, so a document of a million nodes costs what one of ten
 * thousand does), then its nesting, which the `yaml` composer walks recursively. The lexer bounds the nesting from
 * above (see nestingBound); only a document that may be deep has its nesting measured exactly, on the concrete syntax
 * tree (built without recursion). Spends the nodes it counts from `budget`. The error carries the line where the
 * limit was crossed; the caller names the source.
 */
export function yamlOverLimits(text: string, budget?: Budget): { why: string; line: number } | undefined {
  if (text.length > limits.configFileBytes) {
    const why = `${formatBytes(text.length)} of YAML, over the limit of ${formatBytes(limits.configFileBytes)}`;
    return { why, line: 1 };
  }
  const allowed = Math.min(limits.yamlNodes, budget?.yamlNodes ?? Infinity);
  let nodes = 0;
  let offset = 0;
  let flow = 0;
  let indent = 0;
  let indicators = 0;
  let lineStart = true;
  let bound = 0;
  for (const token of new Lexer().lex(text)) {
    const type = CST.tokenType(token);
    if (type !== null && NODE_TOKENS.has(type)) nodes++;
    if (type === "flow-seq-start" || type === "flow-map-start") flow++;
    else if (type === "flow-seq-end" || type === "flow-map-end") flow--;
    else if (type === "seq-item-ind" || type === "explicit-key-ind" || type === "map-value-ind") indicators++;
    if (type === "newline" || type === "doc-start") {
      lineStart = true;
      indent = 0;
      indicators = 0;
    } else {
      if (lineStart && type === "space") indent = token.length;
      lineStart = false;
    }
    bound = Math.max(bound, indent + indicators + flow);
    if (nodes > allowed || flow > limits.yamlDepth) {
      const line = lineAt(text, offset);
      if (flow > limits.yamlDepth) return { why: nestedTooDeep(), line };
      return nodes > limits.yamlNodes
        ? { why: `more than ${limits.yamlNodes} YAML nodes in one document (the limit)`, line }
        : { why: `more than ${limits.yamlNodesPerUserData} YAML nodes in this user-data (the limit)`, line };
    }
    offset += token.length;
  }
  if (budget) budget.yamlNodes -= nodes;
  const deep = bound > limits.yamlDepth / 2 ? cstTooDeep(text) : undefined;
  return deep === undefined ? undefined : { why: nestedTooDeep(), line: lineAt(text, deep) };
}

/*
 * nestingBound: why indentation + indicators on the line + open flow collections bounds the nesting from above (the
 * exact measure runs past half the limit, a margin for what this leaves out). A block collection nested in another
 * either starts on a later line, further right (a list that is a mapping's value may start in the same column, but
 * its items' content starts two columns right of its "- "), or on the same line after an indicator ("- - x",
 * "- a: b"), which the count on that line covers; block collections cannot sit inside flow ones; block scalars and
 * multi-line plain scalars are single tokens, so their lines count nothing.
 */

const nestedTooDeep = (): string => `YAML collections nested more than ${limits.yamlDepth} deep (the limit)`;

function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = text.indexOf("\n"); i >= 0 && i < offset; i = text.indexOf("\n", i + 1)) line++;
  return line;
}

type CstNode = CST.Token | CST.SourceToken | null | undefined;
const COLLECTIONS = new Set(["block-map", "block-seq", "flow-collection"]);

/** The offset of the first collection nested deeper than the limit, if any; an explicit stack, not recursion. */
function cstTooDeep(text: string): number | undefined {
  for (const doc of new Parser().parse(text)) {
    const stack: [CstNode, number][] = [[doc, 0]];
    for (let top = stack.pop(); top; top = stack.pop()) {
      const [node, outer] = top;
      if (!node || typeof node !== "object") continue;
      const depth = outer + (COLLECTIONS.has(node.type) ? 1 : 0);
      if (depth > limits.yamlDepth) return "offset" in node ? node.offset : 0;
      if ("value" in node && node.value && typeof node.value === "object") stack.push([node.value, depth]);
      if ("items" in node) {
        for (const item of node.items) {
          if ("key" in item) stack.push([item.key, depth]);
          if ("value" in item) stack.push([item.value, depth]);
        }
      }
    }
  }
  return undefined;
}

/** gunzip stopped at its limit. */
export class InflatedTooMuch extends Error {}

/** gunzip that refuses to yield more than `most` bytes (throws InflatedTooMuch), whatever the data says. */
export function inflate(bytes: Buffer, most: number): Buffer {
  try {
    // maxOutputLength must be at least 1; one byte more than allowed tells "too much" from "exactly the limit".
    const out = gunzipSync(bytes, { maxOutputLength: most + 1 });
    if (out.length > most) throw new InflatedTooMuch();
    return out;
  } catch (error) {
    if ((error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE") throw new InflatedTooMuch();
    throw error;
  }
}

/**
 * A file given on the command line (--user-data, validate FILE), read only when it is a regular file of at most `most`
 * bytes: its size is checked on the open file before anything is read, so a huge file (or a device) is never held.
 */
export async function readFileWithin(path: string, most = limits.configFileBytes): Promise<Buffer> {
  // O_NONBLOCK: opening a FIFO would otherwise wait for a writer before the check below could refuse it.
  const file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const stats = await file.stat();
    if (!stats.isFile()) throw new Error("it is not a regular file");
    if (stats.size > most) throw new Error(`${formatBytes(stats.size)}, over the limit of ${formatBytes(most)}`);
    return await file.readFile();
  } finally {
    await file.close();
  }
}

/** A ConfigError for text over a limit, naming its source. */
export function overLimit(source: string, why: string, line?: number): ConfigError {
  return new ConfigError(
    `${why}; bootlace refuses input over its limits (docs/configuration.md, "Limits")`,
    line === undefined ? { source } : { source, line },
  );
}
