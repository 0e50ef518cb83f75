// User-data in every form cloud-init reads it (#cloud-config, ## template: jinja, MIME multipart, shell script,
// #cloud-config-archive, gzip…) and bootlace's own older forms (#bootlace, text/x-bootlace): bootlace's part of it.
import { parse as parseYaml } from "yaml";
import { ConfigError, ConfigErrors } from "../core/errors";
import type { SourceRef } from "../core/errors";
import { formatBytes, inflate, InflatedTooMuch, limits, overLimit, userDataBudget, yamlOverLimits } from "./bounds";
import type { Budget } from "./bounds";
import { mentionsBootlace, readCloudConfig } from "./cloud-config";
import type { CloudConfigOptions, UserDataFile } from "./cloud-config";
import { expressionIn, isBootlaceTemplate, renderJinja } from "./jinja";
import type { JinjaExpression } from "./jinja";
import type { Entity } from "./mime";
import { decodeText, decodeTransfer, parseEntity, parseHeaderValue, splitMultipart } from "./mime";
import { parseScalar, parseYamlSource } from "./sources";
import type { SourceDocument } from "./sources";

export interface UserDataConfig {
  /**
   * The configuration files user-data has cloud-init write (write_files into /etc/bootlace): the loader reads each
   * one from here only when it is not on disk yet; the disk is the truth once cloud-init has written it.
   */
  files: UserDataFile[];
  /** The bootlace documents (#bootlace, text/x-bootlace, a cloud-config's bootlace: key), in the order they appear. */
  documents: SourceDocument[];
  /** `BOOTLACE_PROFILE=name` from a shell script (the last one wins). */
  profile?: { name: string; where: SourceRef };
  /** `BOOTLACE_SET_<path>=value` from shell scripts, in order; path is dotted (`dns.records.0.ttl`). */
  sets: { path: string; value: unknown; where: SourceRef }[];
}

/** What reading user-data found; `credentials` only matter when there is bootlace configuration too. */
interface Found extends Omit<UserDataConfig, "files"> {
  errors: ConfigError[];
  credentials: ConfigError[];
  /** Each cloud-config's write_files, in order (cloud-init merges them: see effectiveFiles). */
  writeFiles: { files: UserDataFile[]; where: SourceRef }[];
  mergeRules: boolean;
  /** What was there but carries no bootlace configuration, and why: "user-data (#include): cloud-init fetches…". */
  notes: string[];
  /** What reading may still cost (bounds.ts). */
  budget: Budget;
}

/**
 * Finds bootlace's configuration in raw user-data. Anything that is not one of bootlace's forms is no configuration,
 * not an error: user-data belongs to many tools. Throws ConfigErrors for broken bootlace parts, and refuses user-data
 * that carries bootlace configuration together with AWS credentials.
 */
export function parseUserData(raw: Buffer): UserDataConfig {
  return readUserData(raw).config;
}

/** parseUserData, and what the user-data holds that carries no bootlace configuration (for `validate`). */
export function readUserData(raw: Buffer): { config: UserDataConfig; notes: string[] } {
  if (raw.length > limits.userDataBytes) {
    const why =
      `${formatBytes(raw.length)}, over EC2's limit of ${formatBytes(limits.userDataBytes)} for user-data (raw, ` +
      `before base64): EC2 refuses to launch or modify an instance with more, so no instance is given this; ` +
      `compress it (gzip) or fetch the rest at boot`;
    throw new ConfigErrors([overLimit("user-data", why)]);
  }
  const found: Found = {
    documents: [],
    sets: [],
    errors: [],
    credentials: [],
    writeFiles: [],
    mergeRules: false,
    notes: [],
    budget: userDataBudget(),
  };
  readContent(raw, found, { depth: 0, gzips: 0 });
  const files = effectiveFiles(found);
  const hasConfig =
    files.length > 0 || found.documents.length > 0 || found.profile !== undefined || found.sets.length > 0;
  const errors = [...found.errors, ...(hasConfig ? found.credentials : [])];
  if (errors.length > 0) throw new ConfigErrors(errors);
  const config: UserDataConfig = { files, documents: found.documents, sets: found.sets };
  if (found.profile) config.profile = found.profile;
  return { config, notes: found.notes };
}

/**
 * The files cloud-init will write. cloud-init merges the cloud-configs of user-data in order, and by default a later
 * write_files replaces an earlier one whole: bootlace files in a list that is replaced are never written, which is a
 * mistake to report. With merge_how/merge_type/Merge-Type, the rules are cloud-init's and bootlace does not guess.
 */
function effectiveFiles(found: Found): UserDataFile[] {
  const lists = found.writeFiles;
  const last = lists[lists.length - 1];
  if (!last) return [];
  for (const list of lists.slice(0, -1)) {
    for (const file of list.files) {
      const why = found.mergeRules
        ? `this user-data sets cloud-init's merge rules (merge_how, merge_type or Merge-Type) and has several ` +
          `write_files lists; bootlace cannot tell whether cloud-init writes ${file.path}`
        : `cloud-init never writes ${file.path}: a later cloud-config's write_files (${last.where.source}, line ` +
          `${last.where.line}) replaces this list whole`;
      const message = `${why}; put every write_files entry in one cloud-config`;
      found.errors.push(new ConfigError(message, file.where, file.key));
    }
  }
  return last.files;
}

/**
 * Where content sits: the top-level user-data, or a MIME part (number "2.1", type 'text/plain, "x.txt"'); how many
 * multiparts (or archives) hold it, and how many gzip layers were undone on the way to it.
 */
interface Place {
  number?: string;
  type?: string;
  depth: number;
  gzips: number;
}

/** "user-data (#bootlace)", "user-data part 2 (text/x-bootlace, "bootlace.yaml")", "... (text/plain, #bootlace)". */
function label(place: Place, form: string): string {
  if (place.number === undefined) return `user-data (${[place.type, form].filter(Boolean).join(", ")})`;
  return `user-data part ${place.number} (${[place.type, form].filter(Boolean).join(", ")})`;
}

/**
 * The forms of user-data, as cloud-init tells them apart (and bootlace's own #bootlace). Those that can carry
 * bootlace configuration: gzip and mime (by what they hold), #cloud-config, ## template: jinja, #cloud-config-archive,
 * shell script, #bootlace; the others never do.
 */
export type UserDataForm =
  | "gzip"
  | "mime"
  | "binary"
  | "#bootlace"
  | "#cloud-config"
  | "#cloud-config-archive"
  | "#cloud-config-jsonp"
  | "## template: jinja"
  | "shell script"
  | "#include"
  | "#include-once"
  | "#cloud-boothook"
  | "#part-handler";

// cloud-init's INCLUSION_TYPES_MAP prefixes (cloudinit/handlers/__init__.py), longest first as it searches them.
const PREFIXES: [string, UserDataForm][] = [
  ["#cloud-config-archive", "#cloud-config-archive"],
  ["#cloud-config-jsonp", "#cloud-config-jsonp"],
  ["## template: jinja", "## template: jinja"],
  ["#cloud-boothook", "#cloud-boothook"],
  ["#include-once", "#include-once"],
  ["#part-handler", "#part-handler"],
  ["#cloud-config", "#cloud-config"],
  ["#include", "#include"],
  ["#!", "shell script"],
];

/**
 * The one answer to "is this user-data, and in which form?", by cloud-init's own rules (cloudinit/user_data.py
 * convert_string, handlers.type_from_starts_with): gzip by its magic bytes; "mime-version:" in the first 4096
 * characters makes MIME (a leading Content-Type does too, for bootlace); bytes that are not UTF-8 are binary; else the
 * first characters after leading whitespace, case aside, against cloud-init's prefixes, longest first. The loader
 * reads each form by it; `bootlace validate FILE` takes a file for user-data exactly when this finds a form, and else
 * for a configuration document.
 */
export function userDataForm(bytes: Buffer): UserDataForm | undefined {
  if (isGzip(bytes)) return "gzip";
  // Before the UTF-8 test, unlike cloud-init: a MIME message with a part in another charset is still MIME to bootlace.
  const head = bytes.subarray(0, 4096).toString("latin1");
  if (/^content-type:/i.test(head) || head.toLowerCase().includes("mime-version:")) return "mime";
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return "binary";
  }
  const start = text
    .replace(/^\uFEFF/, "")
    .trimStart()
    .slice(0, 32)
    .toLowerCase();
  if (/^#bootlace(\s|$)/.test(start)) return "#bootlace";
  return PREFIXES.find(([prefix]) => start.startsWith(prefix))?.[1];
}

function isGzip(bytes: Buffer): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Content with its gzip layer undone (and counted in place.gzips), within the limits: the layers on one path and the
 * bytes all decompression in this user-data yields (so a gzip bomb stops at the limit, not at the end of memory).
 */
function gunzipIfNeeded(bytes: Buffer, place: Place, found: Found): { bytes: Buffer; place: Place } | undefined {
  if (!isGzip(bytes)) return { bytes, place };
  const source = place.number === undefined && place.type === undefined ? "user-data" : label(place, "");
  if (place.gzips >= limits.gzipDepth) {
    found.errors.push(overLimit(source, `gzip inside gzip more than ${limits.gzipDepth} deep (the limit)`));
    return undefined;
  }
  const left = found.budget.inflated;
  try {
    const inflated = inflate(bytes, left);
    found.budget.inflated -= inflated.length;
    return { bytes: inflated, place: { ...place, gzips: place.gzips + 1 } };
  } catch (error) {
    if (error instanceof InflatedTooMuch) {
      const why = `gzip data decompresses to more than the ${formatBytes(limits.inflatedBytes)} all of user-data may`;
      found.errors.push(overLimit(source, why));
    } else {
      const why = `cannot decompress gzip data: ${(error as Error).message}`;
      found.errors.push(new ConfigError(why, { source }));
    }
    return undefined;
  }
}

// What the forms that never carry bootlace configuration are, for "no bootlace configuration" messages.
const CARRY_NONE: Partial<Record<UserDataForm, string>> = {
  "#include": "cloud-init fetches the URLs it lists at boot; bootlace does not (validate what they point to)",
  "#include-once": "cloud-init fetches the URLs it lists at boot; bootlace does not (validate what they point to)",
  "#cloud-boothook": "a boothook, which cloud-init runs early at boot; bootlace reads BOOTLACE_ lines in #! scripts",
  "#part-handler": "a part handler (Python for cloud-init)",
  "#cloud-config-jsonp": "a JSON patch for cloud-init's configuration; bootlace does not apply patches",
  binary: "binary data, not UTF-8 text",
  gzip: "gzip inside gzip (cloud-init decompresses once)",
};

/** Reads content in the form userDataForm finds (once decompressed: gzip inside gzip is no form). */
function readContent(raw: Buffer, found: Found, outer: Place): void {
  const inflated = gunzipIfNeeded(raw, outer, found);
  if (!inflated) return;
  const { bytes, place } = inflated;
  const form = userDataForm(bytes);
  const text = bytes.toString("utf8").replace(/^\uFEFF/, "");
  const top = place.type === undefined && place.number === undefined;
  let source = top ? "user-data" : label(place, "");
  if (form === "#bootlace") {
    source = label(place, "#bootlace");
    readYaml(source, text, found);
  } else if (form === "#cloud-config") {
    readCloudConfigInto(found, (detail) => label(place, join("#cloud-config", detail)), text);
  } else if (form === "shell script") {
    source = label(place, "shell script");
    if (readShell(source, text, found) === 0) found.notes.push(`${source}: no BOOTLACE_ lines`);
  } else if (form === "## template: jinja") {
    readJinja(place, text, found);
  } else if (form === "#cloud-config-archive") {
    readArchive(place, text, found);
  } else if (form === "mime") {
    readMime(parseEntity(bytes.toString("latin1")), found, place);
    return;
  } else if (form !== undefined) {
    found.notes.push(`${label(place, form)}: ${CARRY_NONE[form] ?? "not a form bootlace reads"}`);
  } else if (text.trim() !== "") {
    found.notes.push(`${source}: no header cloud-init knows (it warns that it cannot handle this content)`);
  }
  scanCredentials(source, text, found);
}

const join = (...parts: string[]): string => parts.filter(Boolean).join(", ");

function readYaml(source: string, text: string, found: Found, key?: string): void {
  const parsed = parseYamlSource(source, text, key, { budget: found.budget });
  found.errors.push(...parsed.errors);
  if (parsed.document) found.documents.push(parsed.document);
}

/** A cloud-config: its write_files into /etc/bootlace, and its bootlace: key. */
function readCloudConfigInto(
  found: Found,
  named: (detail: string) => string,
  text: string,
  o: CloudConfigOptions = {},
): void {
  const read = readCloudConfig(named, text, { ...o, budget: found.budget });
  found.errors.push(...read.errors);
  if (read.document) found.documents.push(read.document);
  if (read.writeFiles) found.writeFiles.push(read.writeFiles);
  if (read.mergeRules) found.mergeRules = true;
  if (!read.document && !read.writeFiles?.files.length && read.errors.length === 0) {
    found.notes.push(`${named("")}: no write_files entry for /etc/bootlace and no bootlace: key`);
  }
}

// ---- ## template: jinja ----------------------------------------------------------------------------------------------

/**
 * A jinja template: cloud-init renders it with its instance data, then reads the result by its first line (a
 * cloud-config or a script). bootlace renders what can be rendered offline (jinja.ts) and reads the result the same
 * way. A template bootlace cannot read is not its business unless it visibly concerns bootlace; then see unreadable.
 */
function readJinja(place: Place, text: string, found: Found): void {
  const named = (detail: string): string => label(place, join("## template: jinja", detail));
  const concerns = mentionsBootlace(text) || /BOOTLACE_/.test(text);
  const rendered = renderJinja(text);
  if ("why" in rendered && rendered.overLimit) {
    found.errors.push(overLimit(named(""), rendered.why, rendered.line));
    return;
  }
  if ("why" in rendered) {
    const why = `cannot render this template offline: ${rendered.why}; keep bootlace's configuration out of jinja`;
    if (concerns) unreadable(text, [new ConfigError(why, { source: named(""), line: rendered.line })], found);
    else found.notes.push(`${named("")}: a template bootlace cannot render offline (${rendered.why})`);
    return;
  }
  const mustache = concerns ? rendered.expressions.filter(isBootlaceTemplate) : [];
  if (mustache.length > 0) {
    const errors = mustache.map((expression) => {
      const why =
        `${expression.text} is one of bootlace's templates, but cloud-init renders this document with jinja first ` +
        `(a name it does not know drops the whole document, with a warning): write ` +
        `{% raw %}${expression.text}{% endraw %}`;
      return new ConfigError(why, { source: named(""), line: expression.line });
    });
    unreadable(text, errors, found);
    return;
  }
  const form = userDataForm(Buffer.from(rendered.text));
  const o = { lineOf: rendered.lineOf, expressions: rendered.expressions };
  if (form === "#cloud-config") readCloudConfigInto(found, (d) => named(join("#cloud-config", d)), rendered.text, o);
  else if (form === "shell script") readShell(named("shell script"), rendered.text, found, o);
  else found.notes.push(`${named("")}: renders to neither a cloud-config nor a script`);
}

// A file name under /etc/bootlace written literally in a template.
const BOOTLACE_PATH = /\/etc\/bootlace\/(?:bootlace\.yaml|conf\.d\/[\w.@+-]+\.ya?ml)\b/g;

/**
 * A template that concerns bootlace but that bootlace cannot read from the user-data. Whatever bootlace would read
 * from the user-data itself (a bootlace: key, BOOTLACE_ lines) is lost: an error. The files it has cloud-init write
 * are another matter: at boot cloud-init has rendered and written them, and the disk is what counts; so the problems
 * ride on those files and are reported only where bootlace would have to read one from the user-data (validate, or
 * a boot where the file is not there).
 */
function unreadable(text: string, errors: ConfigError[], found: Found): void {
  const paths = [...new Set(text.match(BOOTLACE_PATH) ?? [])];
  if (/^bootlace\s*:/m.test(text) || /BOOTLACE_/.test(text) || paths.length === 0) {
    found.errors.push(...errors);
    return;
  }
  const where = errors[0]?.where ?? { source: "user-data" };
  found.writeFiles.push({ files: paths.map((path) => ({ path, where, key: "write_files", errors })), where });
}

// ---- #cloud-config-archive ---------------------------------------------------------------------------------------------

/**
 * A YAML list of parts (cloud-init's _explode_archive): each a string or {content, type, filename}; a part without a
 * type is told by its first line, else it is a cloud-config. Each is read as a MIME part of that type.
 */
function readArchive(place: Place, text: string, found: Found): void {
  const source = label(place, "#cloud-config-archive");
  if (place.depth >= limits.mimeDepth) {
    found.errors.push(overLimit(source, `parts nested more than ${limits.mimeDepth} deep (the limit)`));
    return;
  }
  const over = yamlOverLimits(text, found.budget);
  if (over) {
    found.errors.push(overLimit(source, over.why, over.line));
    return;
  }
  let entries: unknown;
  try {
    entries = parseYaml(text, { maxAliasCount: limits.yamlAliases, logLevel: "error" });
  } catch (error) {
    if (mentionsBootlace(text)) found.errors.push(new ConfigError(`YAML: ${(error as Error).message}`, { source }));
    return;
  }
  if (!Array.isArray(entries)) {
    if (mentionsBootlace(text)) found.errors.push(new ConfigError("expected a list of parts", { source }));
    return;
  }
  entries.forEach((raw: unknown, index) => {
    if (!takePart(found, source)) return;
    const entry = typeof raw === "string" ? { content: raw } : raw;
    if (entry === null || typeof entry !== "object") return;
    const { content = "", type, filename } = entry as { content?: unknown; type?: unknown; filename?: unknown };
    const body = Buffer.from(String(content), "utf8");
    const headers = new Map<string, string>();
    const guessed = userDataForm(body) === undefined ? "text/cloud-config" : "text/plain";
    headers.set("content-type", typeof type === "string" && type !== "" ? type : guessed);
    if (typeof filename === "string") headers.set("content-disposition", `attachment; filename="${filename}"`);
    const number = place.number === undefined ? `${index + 1}` : `${place.number}.${index + 1}`;
    readPart({ headers, body: body.toString("latin1") }, found, { number, depth: place.depth + 1, gzips: place.gzips });
  });
}

// ---- shell scripts -------------------------------------------------------------------------------------------------

const SHELL_LINE = /^\s*(?:export\s+)?BOOTLACE_(PROFILE|SET_(\w*))=(.*)$/;

/**
 * Reads `BOOTLACE_PROFILE=` and `BOOTLACE_SET_<path>=` lines without running anything. Keys are joined by `__`
 * because keys themselves contain `_`; case is kept because tag keys are case-sensitive.
 */
function readShell(source: string, text: string, found: Found, o: CloudConfigOptions = {}): number {
  let count = 0;
  text.split(/\r?\n/).forEach((line, index) => {
    const m = SHELL_LINE.exec(line);
    if (!m) return;
    count++;
    const where = { source, line: o.lineOf ? o.lineOf(index + 1) : index + 1 };
    const expression = o.expressions && expressionIn(line, o.expressions);
    if (expression) {
      found.errors.push(rendered(expression, source));
      return;
    }
    const name = m[2] === undefined ? "BOOTLACE_PROFILE" : `BOOTLACE_SET_${m[2]}`;
    const raw = shellValue(m[3] ?? "");
    if (raw instanceof ConfigError) {
      found.errors.push(new ConfigError(raw.message, where, name));
    } else if (m[2] === undefined) {
      found.profile = { name: raw, where };
    } else {
      const segments = m[2].split("__");
      if (segments.length > limits.setPathSegments) {
        found.errors.push(
          overLimit(source, `more than ${limits.setPathSegments} keys in the path (the limit)`, where.line),
        );
      } else if (segments.some((s) => s === "")) {
        const why = m[2] === "" ? "no path after BOOTLACE_SET_" : "empty key in path (keys are separated by __)";
        found.errors.push(new ConfigError(`${why}; expected e.g. BOOTLACE_SET_dns__records__0__ttl=30`, where, name));
      } else {
        found.sets.push({ path: segments.join("."), value: parseScalar(raw), where });
      }
    }
  });
  return count;
}

/** The value of an assignment with its quotes removed; a value that needs the shell to expand it is refused. */
function shellValue(rest: string): string | ConfigError {
  const m = /^(?:'([^']*)'|"((?:[^"\\]|\\.)*)"|([^\s;#'"]*))\s*(?:[;#].*)?$/.exec(rest);
  if (!m) return new ConfigError("cannot read this value; write it plain, 'single-quoted' or \"double-quoted\"");
  if (m[1] !== undefined) return m[1];
  const value = m[2] !== undefined ? m[2] : (m[3] ?? "");
  if (/(?<!\\)[$`]/.test(value)) {
    return new ConfigError("the value needs the shell to expand it; bootlace reads the script without running it");
  }
  return value.replace(/\\(.)/g, "$1");
}

// ---- credentials ---------------------------------------------------------------------------------------------------

const ACCESS_KEY_ID = /\b(AKIA|ASIA)[A-Z0-9]{16}\b/;
// A key or variable with a value: `aws_secret_access_key = x`, `AWS_SESSION_TOKEN="x"`, `"SecretAccessKey": "x"`.
const SECRET_NAMED =
  /\b(aws_?secret_?access_?key|aws_?session_?token|aws_?security_?token|SecretAccessKey)["']?\s*[:=]\s*["']?([^\s"',}]+)/i;

function scanCredentials(source: string, text: string, found: Found): void {
  const why =
    "refusing user-data that carries AWS credentials: user-data is readable by any process on the instance; " +
    "give the instance an instance profile (IAM role) instead";
  text.split(/\r?\n/).forEach((line, index) => {
    const where = { source, line: index + 1 };
    const secret = SECRET_NAMED.exec(line);
    if (secret) found.credentials.push(new ConfigError(`${why} (found ${secret[1]} with a value)`, where));
    else if (ACCESS_KEY_ID.test(line))
      found.credentials.push(new ConfigError(`${why} (found an access key id)`, where));
  });
}

// ---- MIME parts (the format itself is mime.ts's) --------------------------------------------------------------------

// Parts whose type says nothing about their content: cloud-init looks at their first line, and so do we.
/** The part types whose text bootlace reads as configuration. */
const BOOTLACE_TYPES = new Set(["text/x-bootlace", "text/cloud-config", "text/jinja2"]);

/** Whether bytes decode in a charset without a replacement character (an unknown charset: as UTF-8, as decodeText). */
function decodesCleanly(bytes: Buffer, charset: string): boolean {
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(charset || "utf-8", { fatal: true });
  } catch {
    decoder = new TextDecoder("utf-8", { fatal: true });
  }
  try {
    decoder.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

const GENERIC_TYPES = new Set([
  "text/plain",
  "text/x-not-multipart",
  "application/octet-stream",
  "application/x-gzip",
  "application/gzip",
]);

/** Where a MIME entity sits: its number ("2.1"), the multiparts around it, the gzip layers undone on the way. */
type At = Omit<Place, "type">;

/** One more part read, unless the user-data has had its limit of parts (then an error, once). */
function takePart(found: Found, source: string): boolean {
  if (--found.budget.parts >= 0) return true;
  if (found.budget.parts === -1) {
    found.errors.push(overLimit(source, `more than ${limits.mimeParts} parts in one user-data (the limit)`));
  }
  return false;
}

/**
 * A MIME entity at the top of user-data or inside a part: a multipart's parts are numbered 1, 2... (2.1 nested).
 * Nesting is checked before going deeper, so no input can make the reader recurse past the limit.
 */
function readMime(entity: Entity, found: Found, at: At): void {
  const type = parseHeaderValue(entity.headers.get("content-type") ?? "text/plain");
  if (!type.value.startsWith("multipart/")) {
    readPart(entity, found, at);
    return;
  }
  const source = at.number === undefined ? "user-data" : `user-data part ${at.number} (${type.value})`;
  const boundary = type.params.get("boundary");
  if (!boundary) {
    found.errors.push(new ConfigError(`${type.value} without a boundary parameter`, { source }));
    return;
  }
  if (at.depth >= limits.mimeDepth) {
    found.errors.push(overLimit(source, `multipart nested more than ${limits.mimeDepth} deep (the limit)`));
    return;
  }
  splitMultipart(entity.body, boundary, Math.max(0, found.budget.parts) + 1).forEach((text, index) => {
    if (!takePart(found, source)) return;
    const number = at.number === undefined ? `${index + 1}` : `${at.number}.${index + 1}`;
    readPart(parseEntity(text), found, { number, depth: at.depth + 1, gzips: at.gzips });
  });
}

function readPart(entity: Entity, found: Found, at: At): void {
  const type = parseHeaderValue(entity.headers.get("content-type") ?? "text/plain");
  if (type.value.startsWith("multipart/")) {
    readMime(entity, found, at);
    return;
  }
  const disposition = parseHeaderValue(entity.headers.get("content-disposition") ?? "");
  const filename = disposition.params.get("filename") ?? type.params.get("name");
  const typed: Place = { ...at, type: `${type.value}${filename ? `, ${JSON.stringify(filename)}` : ""}` };
  const encoding = (entity.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  const inflated = gunzipIfNeeded(decodeTransfer(entity.body, encoding), typed, found);
  if (!inflated) return;
  const { bytes, place } = inflated;
  if (GENERIC_TYPES.has(type.value)) {
    readContent(bytes, found, place);
    return;
  }
  const charset = type.params.get("charset") ?? "utf-8";
  const text = decodeText(bytes, charset).replace(/^\uFEFF/, "");
  // What bootlace reads of a part must be text in its charset: bytes that are not would land in files as U+FFFD.
  if (BOOTLACE_TYPES.has(type.value) && !decodesCleanly(bytes, charset)) {
    found.errors.push(new ConfigError(`not valid ${charset} text`, { source: label(place, "") }));
    return;
  }
  if (type.value === "text/x-bootlace") readYaml(label(place, ""), text, found);
  else if (type.value === "text/cloud-config") {
    if (entity.headers.has("merge-type") || entity.headers.has("x-merge-type")) found.mergeRules = true;
    readCloudConfigInto(found, (detail) => label(place, detail), text);
  } else if (type.value.startsWith("text/x-shellscript")) readShell(label(place, ""), text, found);
  else if (type.value === "text/jinja2") readJinja(place, text, found);
  else if (type.value === "text/cloud-config-archive") readArchive(place, text, found);
  else found.notes.push(`${label(place, "")}: not a type bootlace reads`);
  scanCredentials(label(place, ""), text, found);
}

/** A BOOTLACE_ line whose value cloud-init renders from its instance data. */
function rendered(expression: JinjaExpression, source: string): ConfigError {
  return new ConfigError(
    `${expression.text} is rendered by cloud-init from its instance data at boot; bootlace reads the script ` +
      `without rendering it`,
    { source, line: expression.line },
  );
}
