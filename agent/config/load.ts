// The one way to the effective Config: read every source, layer them with provenance, validate the result once.
import { ConfigError, ConfigErrors } from "../core/errors";
import type { SourceRef } from "../core/errors";
import { inReadingOrder, issueErrors } from "./issues";
import { child, emptyMap, merge, toPlain } from "./merge";
import type { Tracked } from "./merge";
import { configSchema } from "./schema";
import type { Config } from "./schema";
import { applySet, parseSetFlag, readBakedSources } from "./sources";
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
  const userDataErrors: ConfigError[] = [];
  let userData: UserDataConfig = { files: [], documents: [], sets: [] };
  const raw = o.userData;
  if (raw !== undefined) userData = collect(userDataErrors, () => parseUserData(raw)) ?? userData;
  // The files user-data has cloud-init write into /etc/bootlace are baked files: they take their place among them.
  const baked = await readBakedSources(o.root, o.configFile, userData.files);
  errors.push(...baked.errors, ...userDataErrors);
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

/** User-data's BOOTLACE_SET_ lines and BOOTLACE_PROFILE as path sets. */
export function userDataSets(u: UserDataConfig): PathSet[] {
  const sets: PathSet[] = u.sets.map((s) => ({ path: s.path.split("."), value: s.value, where: s.where }));
  if (u.profile) sets.push({ path: ["profile"], value: u.profile.name, where: u.profile.where });
  return sets;
}

/** The sources in their layers, already read. */
export interface Layers {
  baked: SourceDocument[];
  userData: SourceDocument[];
  sets: PathSet[];
  /** Validating one file alone: its profile may live in a baked file we do not have. */
  profileMayBeElsewhere?: boolean;
}

/** The layers merged in order, the profile applied, validated once; throws ConfigErrors with every problem. */
export function resolveConfig(layers: Layers): LoadedConfig {
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
  if (!parsed.success) errors.push(...parsed.error.issues.flatMap((issue) => issueErrors(issue, final)));
  const sources = [...new Set([...documents.map((d) => d.label), ...layers.sets.map((s) => s.where.source)])];
  if (errors.length > 0) throw new ConfigErrors(inReadingOrder(errors, sources));

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
