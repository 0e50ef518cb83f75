// Configuration sources as documents with lines: YAML text, the baked files under /etc/bootlace, and the flags.
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, parse as parseYaml } from "yaml";
import type { Document, Node as YamlNode } from "yaml";
import { ConfigError } from "../core/errors";
import type { SourceRef } from "../core/errors";
import { RootFs, unlessAbsent } from "../root/fs";
import { fsCause } from "../root/fs-error";
import { paths } from "../root/paths";
import { emptyMap, PathError, setPath } from "./merge";
import type { Tracked } from "./merge";
import type { UserDataFile } from "./cloud-config";

/** One configuration document from one source, with every value's line. */
export interface SourceDocument {
  /** What people call the source: "/etc/bootlace/bootlace.yaml", "user-data (#bootlace)". */
  label: string;
  /** The document as a tree with provenance (what the merge consumes). */
  tree: Tracked;
}

/** A path assignment: `--set a.b=1`, `BOOTLACE_SET_a__b=1`, and the profile choices. */
export interface PathSet {
  path: string[];
  value: unknown;
  where: SourceRef;
}

export interface ParsedYaml {
  document?: SourceDocument;
  errors: ConfigError[];
}

export interface YamlOptions {
  /** The line people see for a line of text: text cut out of a larger document counts in that document. */
  lineOf?: (line: number) => number;
}

/**
 * Parses YAML (or JSON, which YAML reads) into a document. With `key`, only that top-level key is bootlace's (the
 * `bootlace:` key of a cloud-config); then a document without it is no configuration, and a broken one is only
 * reported when it visibly has the key, because the rest of a cloud-config is cloud-init's business.
 */
export function parseYamlSource(label: string, text: string, key?: string, o: YamlOptions = {}): ParsedYaml {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const lineOf = o.lineOf ?? ((line: number) => line);
  const lineAt = (offset: number) => lineOf(lines.linePos(offset).line);
  if (doc.errors.length > 0) {
    if (key !== undefined && !new RegExp(`^${key}\\s*:`, "m").test(text)) return { errors: [] };
    const errors = doc.errors.map(
      (e) => new ConfigError(`YAML: ${e.message}`, { source: label, line: lineAt(e.pos[0]) }),
    );
    return { errors };
  }
  let root: YamlNode | null = doc.contents;
  if (key !== undefined) {
    if (!isMap(root) || !root.has(key)) return { errors: [] };
    const pair = root.items.find((p) => isScalar(p.key) && p.key.value === key);
    root = (pair?.value as YamlNode | null | undefined) ?? null;
  }
  const at = (node: YamlNode | null | undefined) => ({ source: label, line: lineAt(node?.range?.[0] ?? 0) });
  if (root === null || (isScalar(root) && root.value === null)) {
    return { document: { label, tree: emptyMap(at(root)) }, errors: [] };
  }
  if (!isMap(root) && !isAlias(root)) {
    const what = key ? `${key}: expected` : "expected";
    return { errors: [new ConfigError(`${what} a mapping of bootlace settings, got ${describeNode(root)}`, at(root))] };
  }
  try {
    return {
      document: { label, tree: track(root, doc, at(root), label, lineAt, { left: 100_000 }) },
      errors: [],
    };
  } catch (error) {
    return { errors: [new ConfigError((error as Error).message, at(root))] };
  }
}

function describeNode(node: YamlNode): string {
  if (isSeq(node)) return "a list";
  if (isScalar(node)) return JSON.stringify(node.value);
  return "something else";
}

/** Builds a Tracked tree; `where` is the line of the key (or list item) that holds the node, which is what users see. */
function track(
  node: unknown,
  doc: Document,
  where: SourceRef,
  label: string,
  lineAt: (offset: number) => number,
  budget: { left: number },
): Tracked {
  // Aliases are expanded into the tree; the budget stops an alias bomb from exploding at boot.
  if (--budget.left < 0) throw new Error("YAML: too many nodes (aliases expanding without bound?)");
  if (isAlias(node)) return track(node.resolve(doc), doc, where, label, lineAt, budget);
  if (isMap(node)) {
    const entries = new Map<string, Tracked>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const keyNode = pair.key as YamlNode | null;
      const at = { source: label, line: lineAt(keyNode?.range?.[0] ?? node.range?.[0] ?? 0) };
      entries.set(key, track(pair.value, doc, at, label, lineAt, budget));
    }
    return { kind: "map", where, entries };
  }
  if (isSeq(node)) {
    const items = node.items.map((item) => {
      const at = { source: label, line: lineAt((item as YamlNode | null)?.range?.[0] ?? node.range?.[0] ?? 0) };
      return track(item, doc, at, label, lineAt, budget);
    });
    return { kind: "seq", where, items };
  }
  return { kind: "scalar", where, value: isScalar(node) ? node.value : null };
}

/** A value written on a command line or in a shell variable, read as a YAML scalar: `30` is a number, `true` a bool. */
export function parseScalar(text: string): unknown {
  try {
    const value: unknown = parseYaml(text);
    return value !== null && typeof value === "object" ? text : value;
  } catch {
    return text;
  }
}

/** `--set dns.records.0.ttl=30`: a dotted path (`\.` for a dot inside a key) and a YAML scalar. */
export function parseSetFlag(arg: string): PathSet {
  const where = { source: `--set ${arg}` };
  const eq = arg.indexOf("=");
  if (eq < 0) throw new ConfigError("expected --set path=value", where);
  const path = arg
    .slice(0, eq)
    .split(/(?<!\\)\./)
    .map((s) => s.replace(/\\\./g, "."));
  return { path, value: parseScalar(arg.slice(eq + 1)), where };
}

/** Applies a set to a tree, turning an impossible path into an error that names the set. */
export function applySet(tree: Tracked, set: PathSet): Tracked {
  const keyPath = set.path.join(".");
  if (set.path.length === 0 || set.path.every((s) => s === "")) throw new ConfigError("empty path", set.where, keyPath);
  try {
    return setPath(tree, set.path, { kind: "scalar", where: set.where, value: set.value });
  } catch (error) {
    if (error instanceof PathError) throw new ConfigError(error.message, set.where, keyPath);
    throw error;
  }
}

export interface BakedSources {
  documents: SourceDocument[];
  errors: ConfigError[];
}

/** A file to read as a configuration document: its name in messages, how to read it, what its absence means. */
interface SourceFile {
  label: string;
  read(): Promise<Buffer | undefined>;
  /** The error when it does not exist; none for a file that may be missing. */
  ifMissing?: string;
  /** What user-data has cloud-init write there: read when the file is not there (yet). */
  fromUserData?: UserDataFile;
}

/**
 * The baked configuration: `/etc/bootlace/bootlace.yaml`, then `/etc/bootlace/conf.d/*.yaml` (and `.yml`) in byte
 * order of their names, read under root through the RootFs door (absent files are fine; any other failure is an error
 * naming the file). `configFile` replaces them all and, being asked for, must exist; it is resolved against the working
 * directory, not root, because it names a file the operator is pointing at.
 *
 * `fromUserData` are the files user-data has cloud-init write there (write_files): each takes its place among them
 * by its name, read from disk once cloud-init has written it, and from the user-data while it has not (bootlace runs
 * after cloud-init's write_files at boot; `plan --user-data` on a laptop, or a boot without cloud-init, reads the same).
 */
export async function readBakedSources(
  root: string,
  configFile?: string,
  fromUserData: UserDataFile[] = [],
): Promise<BakedSources> {
  const found: BakedSources = { documents: [], errors: [] };
  const files =
    configFile !== undefined ? [givenFile(configFile)] : await bakedFiles(new RootFs(root), found.errors, fromUserData);
  for (const file of files) {
    let content: Buffer | undefined;
    try {
      content = await file.read();
    } catch (error) {
      const why = `cannot read: ${fsCause(error)}`;
      found.errors.push(new ConfigError(why, { source: file.label }, undefined, { cause: error }));
      continue;
    }
    if (content === undefined && file.fromUserData) {
      // One problem may ride on several files (a template bootlace cannot render): report it once.
      const known = new Set(found.errors.map((e) => e.message));
      found.errors.push(...file.fromUserData.errors.filter((e) => !known.has(e.message)));
      if (file.fromUserData.document) found.documents.push(file.fromUserData.document);
      continue;
    }
    if (content === undefined) {
      if (file.ifMissing !== undefined) found.errors.push(new ConfigError(file.ifMissing, { source: file.label }));
      continue;
    }
    const parsed = parseYamlSource(file.label, content.toString("utf8"));
    found.errors.push(...parsed.errors);
    if (parsed.document) found.documents.push(parsed.document);
  }
  return found;
}

/** `--config FILE`: a path on this host, not under root. */
function givenFile(configFile: string): SourceFile {
  const path = resolve(configFile);
  return { label: path, read: () => unlessAbsent(readFile(path)), ifMissing: "no such file (given with --config)" };
}

async function bakedFiles(fs: RootFs, errors: ConfigError[], fromUserData: UserDataFile[]): Promise<SourceFile[]> {
  const written = new Map(fromUserData.map((f) => [f.path, f]));
  const file = (path: string): SourceFile => {
    const source: SourceFile = { label: fs.path(path), read: () => fs.readBytes(path) };
    const userData = written.get(path);
    if (userData) source.fromUserData = userData;
    return source;
  };
  let names: string[] = [];
  try {
    const listed = await fs.readDir(paths.bakedDir);
    // readDir takes "not a directory" for absence; a conf.d that is there but is no folder is a mistake to report.
    if (listed === undefined && (await fs.stat(paths.bakedDir)) !== undefined) throw new Error("not a directory");
    names = listed ?? [];
  } catch (error) {
    const why = `cannot list: ${fsCause(error)}`;
    errors.push(new ConfigError(why, { source: fs.path(paths.bakedDir) }, undefined, { cause: error }));
  }
  const fromUserDataNames = [...written.keys()].filter((p) => p.startsWith(`${paths.bakedDir}/`));
  const confd = [...new Set([...names, ...fromUserDataNames.map((p) => p.slice(paths.bakedDir.length + 1))])]
    .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith("."))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((n) => file(`${paths.bakedDir}/${n}`));
  return [file(paths.bakedFile), ...confd];
}
