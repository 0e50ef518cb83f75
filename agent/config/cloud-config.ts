// A cloud-config as bootlace reads it: the files its write_files puts where bootlace reads its configuration
// (/etc/bootlace/bootlace.yaml, /etc/bootlace/conf.d/*.yaml), decoded as cloud-init's write-files module decodes
// them, and the top-level `bootlace:` key of older user-data (which cloud-init 23.4 and later refuse).
import { posix } from "node:path";
import { gunzipSync } from "node:zlib";
import { isMap, isScalar, isSeq, LineCounter, parseDocument, Scalar } from "yaml";
import type { Node as YamlNode } from "yaml";
import { ConfigError } from "../core/errors";
import type { SourceRef } from "../core/errors";
import { paths } from "../root/paths";
import { expressionIn } from "./jinja";
import { toPlain } from "./merge";
import type { JinjaExpression } from "./jinja";
import { parseYamlSource } from "./sources";
import type { SourceDocument } from "./sources";

/** A configuration file that user-data has cloud-init write (write_files), read from the user-data. */
export interface UserDataFile {
  /** Where cloud-init writes it: paths.bakedFile or a .yaml/.yml file in paths.bakedDir. */
  path: string;
  /** The write_files entry, and its key path ("write_files.0"). */
  where: SourceRef;
  key: string;
  /** Its configuration, when it could be read from the user-data. */
  document?: SourceDocument;
  /** Why it could not be, or what is wrong with it: only reported where bootlace reads it from the user-data. */
  errors: ConfigError[];
}

export interface CloudConfig {
  /** A write_files key: by default cloud-init keeps only the last cloud-config's list (later parts replace it). */
  writeFiles?: { files: UserDataFile[]; where: SourceRef };
  /** merge_how or merge_type: cloud-init merges this document's lists by rules bootlace does not model. */
  mergeRules: boolean;
  /** The `bootlace:` key. */
  document?: SourceDocument;
  errors: ConfigError[];
}

export interface CloudConfigOptions {
  /** The user-data line of a line of text (a rendered jinja template counts in the template). */
  lineOf?: (line: number) => number;
  /** A jinja template's `{{ … }}`, standing in text as placeholders. */
  expressions?: JinjaExpression[];
}

/** Whether text visibly concerns bootlace: a `bootlace:` key or a path under /etc/bootlace/. */
export function mentionsBootlace(text: string): boolean {
  return /^bootlace\s*:/m.test(text) || text.includes("/etc/bootlace/");
}

/**
 * Reads a cloud-config. `named(detail)` labels what is read ("user-data part 1 (text/cloud-config, key bootlace)").
 * A cloud-config that does not concern bootlace is never an error here: it is cloud-init's business.
 */
export function readCloudConfig(
  named: (detail: string) => string,
  text: string,
  o: CloudConfigOptions = {},
): CloudConfig {
  const result: CloudConfig = { mergeRules: false, errors: [] };
  const lineOf = o.lineOf ?? ((line: number) => line);
  const legacy = parseYamlSource(named("key bootlace"), text, "bootlace", { lineOf });
  result.errors.push(...legacy.errors);
  if (legacy.document) {
    const expression = o.expressions && expressionIn(JSON.stringify(toPlain(legacy.document.tree)), o.expressions);
    if (expression) result.errors.push(cannotRender(expression, named("key bootlace")));
    else result.document = legacy.document;
  }

  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const lineAt = (node: YamlNode | null | undefined): number => lineOf(lines.linePos(node?.range?.[0] ?? 0).line);
  if (doc.errors.length > 0) {
    // A broken document with a bootlace: key was reported above; one that writes under /etc/bootlace is ours too.
    if (legacy.errors.length === 0 && text.includes("/etc/bootlace/")) {
      for (const e of doc.errors) {
        const line = lineOf(lines.linePos(e.pos[0]).line);
        result.errors.push(new ConfigError(`YAML: ${e.message}`, { source: named(""), line }));
      }
    }
    return result;
  }
  const root = doc.contents;
  if (!isMap(root)) return result;
  result.mergeRules = root.has("merge_how") || root.has("merge_type");
  if (!root.has("write_files")) return result;
  const list = root.get("write_files", true) as YamlNode | null | undefined;
  const where = { source: named("write_files"), line: lineAt(list) };
  result.writeFiles = { files: [], where };
  if (!isSeq(list)) {
    if (text.includes("/etc/bootlace/")) result.errors.push(new ConfigError("expected a list of files", where));
    return result;
  }
  list.items.forEach((item, index) => {
    const entry = readEntry(item as YamlNode, index, named, lineAt, o);
    if (entry instanceof ConfigError) result.errors.push(entry);
    else if (entry) result.writeFiles?.files.push(entry);
  });
  return result;
}

/** One write_files entry: a bootlace file, an error (a path under /etc/bootlace bootlace does not read), or nothing. */
function readEntry(
  item: YamlNode,
  index: number,
  named: (detail: string) => string,
  lineAt: (node: YamlNode | null | undefined) => number,
  o: CloudConfigOptions,
): UserDataFile | ConfigError | undefined {
  if (!isMap(item)) return undefined;
  const field = (key: string): YamlNode | undefined => item.get(key, true) ?? undefined;
  const pathNode = field("path");
  const written = isScalar(pathNode) && typeof pathNode.value === "string" ? pathNode.value : undefined;
  if (written === undefined) return undefined;
  const key = `write_files.${index}`;
  const entryWhere = { source: named(""), line: lineAt(pathNode) };
  const pathExpression = o.expressions && expressionIn(written, o.expressions);
  if (pathExpression) {
    // A path cloud-init renders: bootlace's only if it visibly writes under /etc/bootlace.
    return written.includes("/etc/bootlace/") ? cannotRender(pathExpression, entryWhere.source) : undefined;
  }
  // cloud-init writes os.path.abspath(path), from /.
  const path = posix.resolve("/", written);
  if (!path.startsWith("/etc/bootlace/")) return undefined;
  const name = posix.basename(path);
  const isConfig =
    path === paths.bakedFile ||
    (posix.dirname(path) === paths.bakedDir && /\.ya?ml$/.test(name) && !name.startsWith("."));
  if (!isConfig) {
    return new ConfigError(
      `bootlace would not read ${path}: it reads ${paths.bakedFile} and ${paths.bakedDir}/*.yaml (or *.yml)`,
      entryWhere,
      `${key}.path`,
    );
  }
  const file: UserDataFile = { path, where: entryWhere, key, errors: [] };
  const source = named(`write_files ${path}`);
  const content = field("content");
  const encodingNode = field("encoding");
  const encoding =
    isScalar(encodingNode) && typeof encodingNode.value === "string" ? encodingNode.value.toLowerCase().trim() : "";
  const fail = (message: string, what: string): UserDataFile => {
    file.errors.push(new ConfigError(message, entryWhere, `${key}.${what}`));
    return file;
  };
  if (field("source") !== undefined && content === undefined) {
    return fail("cloud-init fetches this file's source at boot; bootlace cannot read it from user-data", "source");
  }
  if (!isScalar(content) || typeof content.value !== "string") {
    return fail("expected the file's text (a string; encoding: b64, gzip or gz+b64 for encoded content)", "content");
  }
  const expression = o.expressions && expressionIn(content.value, o.expressions);
  if (expression) {
    file.errors.push(cannotRender(expression, source));
    return file;
  }
  const decoded = decode(content.value, encoding);
  if (decoded instanceof ConfigError) return fail(decoded.message, "encoding");
  // A literal block (`content: |`) of plain text counts its lines in the user-data; anything else in the file.
  const literal = content.type === Scalar.BLOCK_LITERAL && (encoding === "" || encoding === "text/plain");
  const start = lineAt(content);
  const label = literal ? source : `${source} (lines of the file)`;
  const parsed = parseYamlSource(label, decoded, undefined, literal ? { lineOf: (line) => start + line } : {});
  file.errors.push(...parsed.errors);
  if (parsed.document) file.document = parsed.document;
  return file;
}

// User-data is at most 16 KiB compressed; as in userdata.ts, this bounds what a gzip bomb could make us hold.
const MAX_INFLATED = 16 * 1024 * 1024;

/** The file's text, decoded as cloud-init's write-files module does (canonicalize_extraction, extract_contents). */
function decode(content: string, encoding: string): string | ConfigError {
  const base64 = (text: string) => Buffer.from(text.replace(/[^A-Za-z0-9+/=]/g, ""), "base64");
  try {
    switch (encoding) {
      case "":
      case "text/plain":
        return content;
      case "b64":
      case "base64":
        return base64(content).toString("utf8");
      case "gz":
      case "gzip":
        return gunzipSync(Buffer.from(content, "utf8"), { maxOutputLength: MAX_INFLATED }).toString("utf8");
      case "gz+base64":
      case "gzip+base64":
      case "gz+b64":
      case "gzip+b64":
        return gunzipSync(base64(content), { maxOutputLength: MAX_INFLATED }).toString("utf8");
      default:
        return new ConfigError(
          `cloud-init does not know the encoding ${JSON.stringify(encoding)} (it warns and writes the text as it ` +
            `is): use b64, gzip, gz+b64 or none`,
        );
    }
  } catch (error) {
    return new ConfigError(`cannot decode ${encoding} content: ${(error as Error).message}`);
  }
}

/** The error for bootlace configuration that holds a `{{ … }}` cloud-init renders from its instance data. */
export function cannotRender(expression: JinjaExpression, source: string): ConfigError {
  return new ConfigError(
    `${expression.text} is rendered by cloud-init from its instance data at boot, so bootlace cannot read this ` +
      `configuration from the user-data; keep jinja out of bootlace's configuration (bootlace's own templates, ` +
      `{{instance.id}} and the like, read the same data)`,
    { source, line: expression.line },
  );
}
