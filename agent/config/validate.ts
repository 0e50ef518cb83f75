// `bootlace validate FILE`: one file checked alone, offline, as a configuration document or as user-data.
import { ConfigError, ConfigErrors } from "../core/errors";
import { resolveConfig, userDataSets } from "./load";
import type { Config } from "./schema";
import { parseYamlSource } from "./sources";
import { parseUserData, userDataForm } from "./userdata";

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
