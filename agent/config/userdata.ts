// User-data in every form it comes in (#bootlace, #cloud-config, MIME multipart, shell script, gzip): bootlace's part.
import { gunzipSync } from "node:zlib";
import { ConfigError, ConfigErrors } from "../core/errors";
import type { SourceRef } from "../core/errors";
import { parseScalar, parseYamlSource } from "./sources";
import type { SourceDocument } from "./sources";

export interface UserDataConfig {
  /** The bootlace documents, in the order they appear. */
  documents: SourceDocument[];
  /** `BOOTLACE_PROFILE=name` from a shell script (the last one wins). */
  profile?: { name: string; where: SourceRef };
  /** `BOOTLACE_SET_<path>=value` from shell scripts, in order; path is dotted (`dns.records.0.ttl`). */
  sets: { path: string; value: unknown; where: SourceRef }[];
}

/** What reading user-data found; `credentials` only matter when there is bootlace configuration too. */
interface Found extends UserDataConfig {
  errors: ConfigError[];
  credentials: ConfigError[];
}

/**
 * Finds bootlace's configuration in raw user-data. Anything that is not one of bootlace's forms is no configuration,
 * not an error: user-data belongs to many tools. Throws ConfigErrors for broken bootlace parts, and refuses user-data
 * that carries bootlace configuration together with AWS credentials.
 */
export function parseUserData(raw: Buffer): UserDataConfig {
  const found: Found = { documents: [], sets: [], errors: [], credentials: [] };
  readContent(raw, found, {});
  const hasConfig = found.documents.length > 0 || found.profile !== undefined || found.sets.length > 0;
  const errors = [...found.errors, ...(hasConfig ? found.credentials : [])];
  if (errors.length > 0) throw new ConfigErrors(errors);
  const result: UserDataConfig = { documents: found.documents, sets: found.sets };
  if (found.profile) result.profile = found.profile;
  return result;
}

/** Where content sits: the top-level user-data, or a MIME part (number "2.1", type 'text/plain, "x.txt"'). */
interface Place {
  number?: string;
  type?: string;
}

/** "user-data (#bootlace)", "user-data part 2 (text/x-bootlace, "bootlace.yaml")", "... (text/plain, #bootlace)". */
function label(place: Place, form: string): string {
  if (place.number === undefined) return `user-data (${[place.type, form].filter(Boolean).join(", ")})`;
  return `user-data part ${place.number} (${[place.type, form].filter(Boolean).join(", ")})`;
}

const GZIP_MAGIC = [0x1f, 0x8b];
// User-data is at most 16 KiB compressed; this bounds what a gzip bomb could make us hold in memory at boot.
const MAX_INFLATED = 16 * 1024 * 1024;

function gunzipIfNeeded(bytes: Buffer, place: Place, found: Found): Buffer | undefined {
  if (bytes[0] !== GZIP_MAGIC[0] || bytes[1] !== GZIP_MAGIC[1]) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: MAX_INFLATED });
  } catch (error) {
    const where = { source: place.number === undefined && place.type === undefined ? "user-data" : label(place, "") };
    found.errors.push(new ConfigError(`cannot decompress gzip data: ${(error as Error).message}`, where));
    return undefined;
  }
}

/** Recognises content by its first line, as cloud-init does for user-data and for parts of a generic type. */
function readContent(raw: Buffer, found: Found, place: Place): void {
  const bytes = gunzipIfNeeded(raw, place, found);
  if (!bytes) return;
  const text = bytes.toString("utf8").replace(/^\uFEFF/, "");
  const first = (/^[^\r\n]*/.exec(text)?.[0] ?? "").trim();
  let source = place.type === undefined && place.number === undefined ? "user-data" : label(place, "");
  if (/^#bootlace(\s|$)/i.test(first)) {
    source = label(place, "#bootlace");
    readYaml(source, text, found);
  } else if (/^#cloud-config\s*$/i.test(first)) {
    source = label(place, "#cloud-config, key bootlace");
    readYaml(source, text, found, "bootlace");
  } else if (first.startsWith("#!")) {
    source = label(place, "shell script");
    readShell(source, text, found);
  } else if (looksLikeMime(text)) {
    readMime(parseEntity(bytes.toString("latin1")), found, place.number);
    return;
  }
  scanCredentials(source, text, found);
}

function readYaml(source: string, text: string, found: Found, key?: string): void {
  const parsed = parseYamlSource(source, text, key);
  found.errors.push(...parsed.errors);
  if (parsed.document) found.documents.push(parsed.document);
}

// ---- shell scripts -------------------------------------------------------------------------------------------------

const SHELL_LINE = /^\s*(?:export\s+)?BOOTLACE_(PROFILE|SET_(\w*))=(.*)$/;

/**
 * Reads `BOOTLACE_PROFILE=` and `BOOTLACE_SET_<path>=` lines without running anything. Keys are joined by `__`
 * because keys themselves contain `_`; case is kept because tag keys are case-sensitive.
 */
function readShell(source: string, text: string, found: Found): void {
  text.split(/\r?\n/).forEach((line, index) => {
    const m = SHELL_LINE.exec(line);
    if (!m) return;
    const where = { source, line: index + 1 };
    const name = m[2] === undefined ? "BOOTLACE_PROFILE" : `BOOTLACE_SET_${m[2]}`;
    const raw = shellValue(m[3] ?? "");
    if (raw instanceof ConfigError) {
      found.errors.push(new ConfigError(raw.message, where, name));
    } else if (m[2] === undefined) {
      found.profile = { name: raw, where };
    } else {
      const segments = m[2].split("__");
      if (segments.some((s) => s === "")) {
        const why = m[2] === "" ? "no path after BOOTLACE_SET_" : "empty key in path (keys are separated by __)";
        found.errors.push(new ConfigError(`${why}; expected e.g. BOOTLACE_SET_dns__records__0__ttl=30`, where, name));
      } else {
        found.sets.push({ path: segments.join("."), value: parseScalar(raw), where });
      }
    }
  });
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

// ---- MIME multipart ------------------------------------------------------------------------------------------------
//
// Hand-rolled rather than a library: nothing MIME-capable is installed, and the maintained parsers (mailparser,
// postal-mime) are built for e-mail (address headers, encoded words, attachments streams) and would add far more to
// the single boot-time bundle than the subset cloud-init's user-data uses: multipart/* with a boundary, per-part
// Content-Type (with charset), Content-Transfer-Encoding (7bit, 8bit, binary, base64, quoted-printable) and
// Content-Disposition filename. The parser works on latin1 strings, which map bytes one to one, so binary bodies
// survive until they are decoded.

interface Entity {
  headers: Map<string, string>;
  body: string;
}

/** cloud-init treats user-data as MIME when "MIME-Version:" appears near the top; a leading Content-Type also counts. */
function looksLikeMime(text: string): boolean {
  return /^content-type:/i.test(text) || /(^|\n)mime-version:/i.test(text.slice(0, 4096));
}

function parseEntity(latin1: string): Entity {
  const split = /\r?\n\r?\n/.exec(latin1);
  const head = split ? latin1.slice(0, split.index) : latin1;
  const body = split ? latin1.slice(split.index + split[0].length) : "";
  const headers = new Map<string, string>();
  // Folded header lines continue the previous one.
  for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
    const m = /^([!-9;-~]+):\s*(.*)$/.exec(line);
    if (m?.[1] !== undefined) headers.set(m[1].toLowerCase(), (m[2] ?? "").trim());
  }
  return { headers, body };
}

/** `text/plain; charset="utf-8"` → type and parameters (quoted-string and RFC 2231 `name*=charset''value` forms). */
function parseHeaderValue(value: string): { value: string; params: Map<string, string> } {
  const semi = value.indexOf(";");
  const params = new Map<string, string>();
  const re = /;\s*([^=\s;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))/g;
  for (const m of (semi < 0 ? "" : value.slice(semi)).matchAll(re)) {
    const name = (m[1] ?? "").toLowerCase();
    const raw = m[2] !== undefined ? m[2].replace(/\\(.)/g, "$1") : (m[3] ?? "");
    if (name.endsWith("*")) {
      const [, charset = "", encoded = ""] = /^([^']*)'[^']*'(.*)$/.exec(raw) ?? [];
      params.set(name.slice(0, -1), decodeText(Buffer.from(decodePercent(encoded), "latin1"), charset));
    } else {
      params.set(name, raw);
    }
  }
  return { value: (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase(), params };
}

function decodePercent(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function decodeText(bytes: Buffer, charset: string): string {
  try {
    return new TextDecoder(charset || "utf-8").decode(bytes);
  } catch {
    return bytes.toString("utf8");
  }
}

/** The bodies between `--boundary` lines (RFC 2046: the line break before a delimiter belongs to it). */
function splitMultipart(body: string, boundary: string): string[] {
  const escaped = boundary.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const delimiter = new RegExp(`(?:^|\\r?\\n)--${escaped}(--)?[ \\t]*(?:\\r?\\n|$)`, "g");
  const parts: string[] = [];
  let start: number | undefined;
  for (const m of body.matchAll(delimiter)) {
    if (start !== undefined) parts.push(body.slice(start, m.index));
    if (m[1] !== undefined) return parts;
    start = m.index + m[0].length;
  }
  // No closing delimiter: keep what was opened, as Python's parser does.
  if (start !== undefined) parts.push(body.slice(start));
  return parts;
}

function decodeTransfer(body: string, encoding: string): Buffer {
  switch (encoding) {
    case "base64":
      return Buffer.from(body.replace(/[^A-Za-z0-9+/=]/g, ""), "base64");
    case "quoted-printable":
      return Buffer.from(decodePercent(body.replace(/=\r?\n/g, "").replace(/=([0-9A-Fa-f]{2})/g, "%$1")), "latin1");
    default:
      return Buffer.from(body, "latin1");
  }
}

// Parts whose type says nothing about their content: cloud-init looks at their first line, and so do we.
const GENERIC_TYPES = new Set([
  "text/plain",
  "text/x-not-multipart",
  "application/octet-stream",
  "application/x-gzip",
  "application/gzip",
]);

/** A MIME entity at the top of user-data or inside a part: a multipart's parts are numbered 1, 2... (2.1 nested). */
function readMime(entity: Entity, found: Found, number: string | undefined): void {
  const type = parseHeaderValue(entity.headers.get("content-type") ?? "text/plain");
  if (!type.value.startsWith("multipart/")) {
    readPart(entity, found, number);
    return;
  }
  const boundary = type.params.get("boundary");
  if (!boundary) {
    const source = number === undefined ? "user-data" : `user-data part ${number} (${type.value})`;
    found.errors.push(new ConfigError(`${type.value} without a boundary parameter`, { source }));
    return;
  }
  splitMultipart(entity.body, boundary).forEach((text, index) => {
    readPart(parseEntity(text), found, number === undefined ? `${index + 1}` : `${number}.${index + 1}`);
  });
}

function readPart(entity: Entity, found: Found, number: string | undefined): void {
  const type = parseHeaderValue(entity.headers.get("content-type") ?? "text/plain");
  if (type.value.startsWith("multipart/")) {
    readMime(entity, found, number);
    return;
  }
  const disposition = parseHeaderValue(entity.headers.get("content-disposition") ?? "");
  const filename = disposition.params.get("filename") ?? type.params.get("name");
  const place: Place = { type: `${type.value}${filename ? `, ${JSON.stringify(filename)}` : ""}` };
  if (number !== undefined) place.number = number;
  const encoding = (entity.headers.get("content-transfer-encoding") ?? "7bit").toLowerCase();
  const bytes = gunzipIfNeeded(decodeTransfer(entity.body, encoding), place, found);
  if (!bytes) return;
  if (GENERIC_TYPES.has(type.value)) {
    readContent(bytes, found, place);
    return;
  }
  const text = decodeText(bytes, type.params.get("charset") ?? "utf-8").replace(/^\uFEFF/, "");
  if (type.value === "text/x-bootlace") readYaml(label(place, ""), text, found);
  else if (type.value === "text/cloud-config") readYaml(label(place, "key bootlace"), text, found, "bootlace");
  else if (type.value.startsWith("text/x-shellscript")) readShell(label(place, ""), text, found);
  scanCredentials(label(place, ""), text, found);
}
