// `bootlace validate FILE`: one file checked alone, offline, as a configuration document or as user-data.
import { ConfigError, ConfigErrors } from "../core/errors";
import { paths } from "../root/paths";
import { resolveConfig, userDataSets } from "./load";
import type { Config } from "./schema";
import { parseYamlSource } from "./sources";
import type { SourceDocument } from "./sources";
import { readUserData, userDataForm } from "./userdata";

export interface ValidatedFile {
  kind: "config" | "user-data";
  sources: string[];
  config: Config;
}

/**
 * Validates a bootlace configuration (YAML/JSON, like a baked file) or user-data in any form, told apart by the same
 * detector the loader reads user-data with. Either may select a profile that another file (the AMI's bootlace.yaml)
 * defines, so an unknown profile is accepted when the file defines no profiles itself.
 */
export function validateFile(path: string, content: Buffer): Promise<ValidatedFile> {
  return Promise.resolve().then(() => validateNow(path, content));
}

function validateNow(path: string, content: Buffer): ValidatedFile {
  if (userDataForm(content) === undefined) {
    const parsed = parseYamlSource(path, content.toString("utf8"));
    if (!parsed.document) throw new ConfigErrors(parsed.errors);
    const loaded = resolveConfig({ baked: [parsed.document], userData: [], sets: [], profileMayBeElsewhere: true });
    return { kind: "config", sources: loaded.sources, config: loaded.config };
  }
  const { config: userData, notes } = readUserData(content);
  if (userData.files.length === 0 && userData.documents.length === 0 && userData.sets.length === 0) {
    if (!userData.profile) {
      const why = notes.length > 0 ? notes.join("; ") : "empty";
      throw new ConfigErrors([
        new ConfigError(`no bootlace configuration in this user-data: ${why}`, { source: path }),
      ]);
    }
  }
  // The files cloud-init will write are read as the loader reads them at boot: baked files, in the loader's order.
  // One problem may ride on several files (a template bootlace cannot render): report it once.
  const errors = [...new Map(userData.files.flatMap((f) => f.errors).map((e) => [e.message, e])).values()];
  if (errors.length > 0) throw new ConfigErrors(errors);
  const baked = [...userData.files]
    .sort((a, b) => order(a.path) - order(b.path) || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
    .flatMap((f): SourceDocument[] => (f.document ? [f.document] : []));
  const sets = userDataSets(userData);
  const loaded = resolveConfig({ baked, userData: userData.documents, sets, profileMayBeElsewhere: true });
  return { kind: "user-data", sources: loaded.sources, config: loaded.config };
}

/** bootlace.yaml before conf.d. */
const order = (path: string): number => (path === paths.bakedFile ? 0 : 1);
