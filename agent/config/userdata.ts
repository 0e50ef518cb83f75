// User-data in every form it comes in (#bootlace, #cloud-config, MIME multipart, shell script, gzip): bootlace's part.
import { gunzipSync } from "node:zlib";
import { ConfigError, ConfigErrors } from "../core/errors";
import type { SourceRef } from "../core/errors";
import type { Entity } from "./mime";
import { decodeText, decodeTransfer, parseEntity, parseHeaderValue, splitMultipart } from "./mime";
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

/** The forms bootlace reads user-data in; anything else carries no bootlace configuration. */
export type UserDataForm = "gzip" | "#bootlace" | "#cloud-config" | "shell script" | "mime";

/**
 * The one answer to "is this user-data, and in which form?", by the first bytes and the first line, as cloud-init
 * tells user-data (and parts of a generic type) apart. The loader reads each form by it; `bootlace validate FILE` takes
 * a file for user-data exactly when this finds a form, and else for a configuration document.
 */
export function userDataForm(bytes: Buffer): UserDataForm | undefined {
  if (isGzip(bytes)) return "gzip";
  const text = bytes.toString("utf8").replace(/^\uFEFF/, "");
  const first = (/^[^\r\n]*/.exec(text)?.[0] ?? "").trim();
  if (/^#bootlace(\s|$)/i.test(first)) return "#bootlace";
  if (/^#cloud-config\s*$/i.test(first)) return "#cloud-config";
  if (first.startsWith("#!")) return "shell script";
  // cloud-init takes user-data for MIME when "MIME-Version:" appears near the top; a leading Content-Type also counts.
  if (/^content-type:/i.test(text) || /(^|\n)mime-version:/i.test(text.slice(0, 4096))) return "mime";
  return undefined;
}

function isGzip(bytes: Buffer): boolean {
  return bytes[0] === 0x1f && bytes[1] === 0x8b;
}

// User-data is at most 16 KiB compressed; this bounds what a gzip bomb could make us hold in memory at boot.
const MAX_INFLATED = 16 * 1024 * 1024;

function gunzipIfNeeded(bytes: Buffer, place: Place, found: Found): Buffer | undefined {
  if (!isGzip(bytes)) return bytes;
  try {
    return gunzipSync(bytes, { maxOutputLength: MAX_INFLATED });
  } catch (error) {
    const where = { source: place.number === undefined && place.type === undefined ? "user-data" : label(place, "") };
    found.errors.push(new ConfigError(`cannot decompress gzip data: ${(error as Error).message}`, where));
    return undefined;
  }
}

/** Reads content in the form userDataForm finds (once decompressed: gzip inside gzip is no form). */
function readContent(raw: Buffer, found: Found, place: Place): void {
  const bytes = gunzipIfNeeded(raw, place, found);
  if (!bytes) return;
  const form = userDataForm(bytes);
  const text = bytes.toString("utf8").replace(/^\uFEFF/, "");
  let source = place.type === undefined && place.number === undefined ? "user-data" : label(place, "");
  if (form === "#bootlace") {
    source = label(place, "#bootlace");
    readYaml(source, text, found);
  } else if (form === "#cloud-config") {
    source = label(place, "#cloud-config, key bootlace");
    readYaml(source, text, found, "bootlace");
  } else if (form === "shell script") {
    source = label(place, "shell script");
    readShell(source, text, found);
  } else if (form === "mime") {
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

// ---- MIME parts (the format itself is mime.ts's) --------------------------------------------------------------------

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
