// zod's issues turned into the errors people read: each at the source, line and key path of the value that caused it,
// worded with the value given, reported once, in the order a person reads through the sources.
import * as z from "zod";
import { ConfigError } from "../core/errors";
import { locate } from "./merge";
import type { PathSegment, Tracked } from "./merge";
import { documentShape } from "./schema";

/** The errors for one zod issue about the merged tree `final` (an unknown-keys issue is one error per key). */
export function issueErrors(issue: z.core.$ZodIssue, final: Tracked): ConfigError[] {
  const path = issue.path.map((p) => (typeof p === "number" ? p : String(p)));
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(path);
    const hint = known.length > 0 ? ` (expected one of: ${known.join(", ")})` : "";
    return issue.keys.map((key) => {
      const at = [...path, key];
      return new ConfigError(`unknown key${hint}`, locate(final, at), keyPath(at));
    });
  }
  return [new ConfigError(describeIssue(issue), locate(final, path), keyPath(path))];
}

function keyPath(path: readonly PathSegment[]): string {
  return path.length > 0 ? path.join(".") : "(top level)";
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === "invalid_type" && issue.input === undefined) return `required (expected ${issue.expected})`;
  if (issue.code === "invalid_type") return `expected ${issue.expected}, got ${describeValue(issue.input)}`;
  if (issue.code === "invalid_value") {
    return `expected ${issue.values.map((v) => JSON.stringify(v)).join(" or ")}, got ${describeValue(issue.input)}`;
  }
  // zod's own prefixes ("Too small: ") say less than the value that was given.
  const message = issue.message.replace(/^(Too small|Too big|Invalid input|Invalid option|Invalid string): /, "");
  const primitive = issue.input === null || ["string", "number", "boolean"].includes(typeof issue.input);
  return primitive && !/\bgot\b/.test(message) ? `${message}, got ${describeValue(issue.input)}` : message;
}

function describeValue(value: unknown): string {
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null (empty)";
  if (typeof value === "object") return "a mapping";
  return JSON.stringify(value);
}

/** The keys the schema allows at path, for "unknown key" hints; walked with zod's public accessors. */
function knownKeys(path: readonly PathSegment[]): string[] {
  let schema: z.core.$ZodType | undefined = documentShape;
  for (const segment of path) {
    schema = unwrapped(schema);
    if (schema instanceof z.ZodObject) schema = schema.shape[String(segment)] as z.core.$ZodType | undefined;
    else if (schema instanceof z.ZodArray) schema = schema.element;
    else if (schema instanceof z.ZodRecord) schema = schema.valueType;
    else return [];
  }
  const at = unwrapped(schema);
  return at instanceof z.ZodObject ? Object.keys(at.shape) : [];
}

/** Through optional, default and nullable wrappers to the schema they wrap. */
function unwrapped(schema: z.core.$ZodType | undefined): z.core.$ZodType | undefined {
  let s = schema;
  while (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) s = s.unwrap();
  return s;
}

/**
 * The errors as reported: the same mistake reached through profiles.<name> and through the top level once, then by
 * source and line, as a person reads through the files (zod's order follows the schema instead).
 */
export function inReadingOrder(errors: ConfigError[], sources: string[]): ConfigError[] {
  const rank = (e: ConfigError) => {
    const i = sources.indexOf(e.where?.source ?? "");
    return [i < 0 ? sources.length : i, e.where?.line ?? 0] as const;
  };
  return dedupe(errors).sort((a, b) => {
    const [sa, la] = rank(a);
    const [sb, lb] = rank(b);
    return sa - sb || la - lb;
  });
}

function dedupe(errors: ConfigError[]): ConfigError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const at = e.where ? `${e.where.source}${e.where.line !== undefined ? `, line ${e.where.line}` : ""}: ` : "";
    const rest = e.message.slice(at.length + (e.keyPath ? e.keyPath.length + 2 : 0));
    const key = `${at}|${(e.keyPath ?? "").replace(/^profiles\.[^.]+\./, "")}|${rest}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
