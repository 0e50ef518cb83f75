// The one way to the effective Config: read every source, merge them with provenance, validate once, explain errors.
import { ConfigError, ConfigErrors } from "../core/errors";
import type { SourceRef } from "../core/errors";
import { child, emptyMap, locate, merge, toPlain } from "./merge";
import type { PathSegment, Tracked } from "./merge";
import { configSchema, documentShape } from "./schema";
import type { Config } from "./schema";
import { applySet, parseSetFlag, parseYamlSource, readBakedSources } from "./sources";
import type { PathSet, SourceDocument } from "./sources";
import { parseUserData } from "./userdata";
import type { UserDataConfig } from "./userdata";

export interface LoadOptions {
  /** Every baked path is taken under this folder ("/" in production). */
  root: string;
  /** `--config FILE`: read this instead of the baked files (relative to the working directory). */
  configFile?: string;
  /** Raw user-data (IMDS or `--user-data FILE`), possibly gzip-compressed. */
  userData?: Buffer;
  /** `--profile NAME`. */
  profile?: string;
  /** `--set path=value`, in order. */
  sets?: string[];
  /** Reads a file, `undefined` when it does not exist (tests hand in their own). */
  readFile?: (path: string) => Promise<Buffer | undefined>;
}

export interface LoadedConfig {
  config: Config;
  /** Labels of the sources that contributed, in the order they were applied. */
  sources: string[];
  /** The profile applied, if any. */
  profile?: string;
}

const DEFAULTS: SourceRef = { source: "built-in defaults" };
const META_KEYS = new Set(["version", "profile", "profiles"]);

/**
 * effective = defaults ← baked top level ← profiles[P] ← user-data top level ← user-data sets ← flags, where P is the
 * `profile` of all sources merged (flags and BOOTLACE_PROFILE included) and profiles come from every source.
 * Throws ConfigErrors listing every problem found; nothing is returned from a bad configuration.
 */
export async function loadConfig(o: LoadOptions): Promise<LoadedConfig> {
  const errors: ConfigError[] = [];
  const baked = await readBakedSources(o.root, o.configFile, o.readFile);
  errors.push(...baked.errors);
  let userData: UserDataConfig = { documents: [], sets: [] };
  const raw = o.userData;
  if (raw !== undefined) userData = collect(errors, () => parseUserData(raw)) ?? userData;
  const flagSets: PathSet[] = [];
  for (const arg of o.sets ?? []) {
    const set = collect(errors, () => parseSetFlag(arg));
    if (set) flagSets.push(set);
  }
  if (o.profile !== undefined) {
    flagSets.push({ path: ["profile"], value: o.profile, where: { source: `--profile ${o.profile}` } });
  }
  // A source that could not be read is missing from the merge; validating without it would only add confusion.
  if (errors.length > 0) throw new ConfigErrors(errors);
  return resolveConfig({
    baked: baked.documents,
    userData: userData.documents,
    sets: [...userDataSets(userData), ...flagSets],
  });
}

/** Runs a step, moving the ConfigError(s) it throws into errors. */
function collect<T>(errors: ConfigError[], step: () => T): T | undefined {
  try {
    return step();
  } catch (error) {
    if (error instanceof ConfigErrors) errors.push(...error.errors);
    else if (error instanceof ConfigError) errors.push(error);
    else throw error;
    return undefined;
  }
}

function userDataSets(u: UserDataConfig): PathSet[] {
  const sets: PathSet[] = u.sets.map((s) => ({ path: s.path.split("."), value: s.value, where: s.where }));
  if (u.profile) sets.push({ path: ["profile"], value: u.profile.name, where: u.profile.where });
  return sets;
}

interface Layers {
  baked: SourceDocument[];
  userData: SourceDocument[];
  sets: PathSet[];
  /** Validating one file alone: its profile may live in a baked file we do not have. */
  profileMayBeElsewhere?: boolean;
}

function resolveConfig(layers: Layers): LoadedConfig {
  const errors: ConfigError[] = [];
  const documents = [...layers.baked, ...layers.userData];
  // Everything merged is where the profile choice and the profiles come from.
  let all = documents.reduce<Tracked>((acc, d) => merge(acc, emptyProfilesAsMaps(d.tree)), emptyMap(DEFAULTS));
  const isMeta = (s: PathSet) => META_KEYS.has(s.path[0] ?? "");
  for (const set of layers.sets.filter(isMeta)) all = collect(errors, () => applySet(all, set)) ?? all;

  const chosen = child(all, ["profile"]);
  const name = chosen?.kind === "scalar" && typeof chosen.value === "string" ? chosen.value : undefined;
  const profile = name === undefined ? undefined : child(all, ["profiles", name]);
  let unknownProfile = false;
  if (name !== undefined && profile === undefined) {
    unknownProfile = true;
    const profiles = child(all, ["profiles"]);
    const known = profiles?.kind === "map" ? [...profiles.entries.keys()] : [];
    if (!(layers.profileMayBeElsewhere && known.length === 0)) {
      const list = known.length > 0 ? known.join(", ") : "none defined";
      errors.push(
        new ConfigError(`no profile named ${JSON.stringify(name)} (known: ${list})`, chosen?.where, "profile"),
      );
    }
  }

  let effective = layers.baked.reduce<Tracked>((acc, d) => merge(acc, sections(d.tree)), emptyMap(DEFAULTS));
  if (profile?.kind === "map") effective = merge(effective, profile);
  effective = layers.userData.reduce<Tracked>((acc, d) => merge(acc, sections(d.tree)), effective);
  for (const set of layers.sets.filter((s) => !isMeta(s))) {
    effective = collect(errors, () => applySet(effective, set)) ?? effective;
  }

  const final = withMeta(effective, all, unknownProfile);
  const parsed = configSchema.safeParse(toPlain(final), { reportInput: true });
  if (!parsed.success) errors.push(...parsed.error.issues.flatMap((issue) => explain(issue, final)));
  const sources = [...new Set([...documents.map((d) => d.label), ...layers.sets.map((s) => s.where.source)])];
  if (errors.length > 0) throw new ConfigErrors(inReadingOrder(dedupe(errors), sources));

  const result: LoadedConfig = { config: parsed.data as Config, sources };
  if (name !== undefined && profile !== undefined) result.profile = name;
  return result;
}

/** `profiles: {web: }` declares an empty profile (as `web: {}` does); elsewhere null removes, but not here. */
function emptyProfilesAsMaps(tree: Tracked): Tracked {
  const profiles = child(tree, ["profiles"]);
  if (tree.kind !== "map" || profiles?.kind !== "map") return tree;
  const entries = new Map(
    [...profiles.entries].map(([name, p]) => [name, p.kind === "scalar" && p.value === null ? emptyMap(p.where) : p]),
  );
  return { ...tree, entries: new Map(tree.entries).set("profiles", { ...profiles, entries }) };
}

/** A document without version/profile/profiles: what gets merged as "the top level". */
function sections(tree: Tracked): Tracked {
  if (tree.kind !== "map") return tree;
  return { ...tree, entries: new Map([...tree.entries].filter(([k]) => !META_KEYS.has(k))) };
}

function withMeta(effective: Tracked, all: Tracked, dropProfile: boolean): Tracked {
  const meta = all.kind === "map" ? [...all.entries].filter(([k]) => META_KEYS.has(k)) : [];
  const entries = new Map([...meta.filter(([k]) => !(dropProfile && k === "profile")), ...sectionEntries(effective)]);
  return { kind: "map", where: all.where, entries };
}

function sectionEntries(t: Tracked): [string, Tracked][] {
  return t.kind === "map" ? [...t.entries] : [];
}

// ---- zod issues → errors with source, line and key path -----------------------------------------------------------

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  input?: unknown;
  keys?: string[];
  values?: unknown[];
  expected?: string;
}

function explain(issue: Issue, final: Tracked): ConfigError[] {
  const path = issue.path.map((p) => (typeof p === "number" ? p : String(p)));
  if (issue.code === "unrecognized_keys") {
    const known = knownKeys(path);
    const hint = known.length > 0 ? ` (expected one of: ${known.join(", ")})` : "";
    return (issue.keys ?? []).map((key) => {
      const at = [...path, key];
      return new ConfigError(`unknown key${hint}`, locate(final, at), keyPath(at));
    });
  }
  return [new ConfigError(describeIssue(issue), locate(final, path), keyPath(path))];
}

function keyPath(path: readonly PathSegment[]): string {
  return path.length > 0 ? path.join(".") : "(top level)";
}

function describeIssue(issue: Issue): string {
  if (issue.code === "invalid_type" && issue.input === undefined) return `required (expected ${issue.expected})`;
  if (issue.code === "invalid_type") return `expected ${issue.expected}, got ${describeValue(issue.input)}`;
  if (issue.code === "invalid_value" && issue.values) {
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

/** The keys the schema allows at path, for "unknown key" hints. */
function knownKeys(path: readonly PathSegment[]): string[] {
  let schema: unknown = documentShape;
  for (const segment of [...path, undefined]) {
    // Walk through wrappers to the object, list or record the next segment indexes.
    for (let def = defOf(schema); def; def = defOf(schema)) {
      if (def.type === "optional" || def.type === "default" || def.type === "nullable") schema = def.innerType;
      else break;
    }
    const def = defOf(schema);
    if (!def) return [];
    if (segment === undefined) return def.type === "object" ? Object.keys(def.shape ?? {}) : [];
    if (def.type === "object") schema = def.shape?.[String(segment)];
    else if (def.type === "array") schema = def.element;
    else if (def.type === "record") schema = def.valueType;
    else return [];
  }
  return [];
}

interface LooseDef {
  type: string;
  innerType?: unknown;
  shape?: Record<string, unknown>;
  element?: unknown;
  valueType?: unknown;
}

function defOf(schema: unknown): LooseDef | undefined {
  return (schema as { _zod?: { def?: LooseDef } } | undefined)?._zod?.def;
}

/** Errors by source, then line, as a person reads through the files; zod's order follows the schema instead. */
function inReadingOrder(errors: ConfigError[], sources: string[]): ConfigError[] {
  const rank = (e: ConfigError) => {
    const i = sources.indexOf(e.where?.source ?? "");
    return [i < 0 ? sources.length : i, e.where?.line ?? 0] as const;
  };
  return [...errors].sort((a, b) => {
    const [sa, la] = rank(a);
    const [sb, lb] = rank(b);
    return sa - sb || la - lb;
  });
}

/** The same mistake reached through profiles.<name> and through the top level is reported once. */
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

// ---- bootlace validate FILE ---------------------------------------------------------------------------------------

/** User-data forms are told apart from a plain configuration document by their first bytes. */
function isUserData(content: Buffer): boolean {
  if (content[0] === 0x1f && content[1] === 0x8b) return true;
  const text = content.toString("utf8", 0, 4096).replace(/^\uFEFF/, "");
  return /^(#bootlace(\s|$)|#cloud-config|#!|content-type:)/i.test(text) || /(^|\n)mime-version:/i.test(text);
}

/**
 * Validates one file alone, offline: a bootlace configuration (YAML/JSON, like a baked file) or user-data in any
 * form. Either may select a profile that another file (the AMI's bootlace.yaml) defines, so an unknown profile is
 * accepted when the file defines no profiles itself.
 */
export function validateFile(path: string, content: Buffer): Promise<ValidatedFile> {
  return Promise.resolve().then(() => validateNow(path, content));
}

export interface ValidatedFile {
  kind: "config" | "user-data";
  sources: string[];
  config: Config;
}

function validateNow(path: string, content: Buffer): ValidatedFile {
  if (!isUserData(content)) {
    const parsed = parseYamlSource(path, content.toString("utf8"));
    if (!parsed.document) throw new ConfigErrors(parsed.errors);
    const loaded = resolveConfig({ baked: [parsed.document], userData: [], sets: [], profileMayBeElsewhere: true });
    return { kind: "config", sources: loaded.sources, config: loaded.config };
  }
  const userData = parseUserData(content);
  if (userData.documents.length === 0 && userData.sets.length === 0 && !userData.profile) {
    const forms =
      "#bootlace, #cloud-config with a bootlace: key, a MIME part text/x-bootlace, or BOOTLACE_ lines in a shell script";
    throw new ConfigErrors([new ConfigError(`no bootlace configuration found (expected ${forms})`, { source: path })]);
  }
  const sets = userDataSets(userData);
  const loaded = resolveConfig({ baked: [], userData: userData.documents, sets, profileMayBeElsewhere: true });
  return { kind: "user-data", sources: loaded.sources, config: loaded.config };
}
