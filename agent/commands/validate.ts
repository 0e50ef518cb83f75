// validate: checks a configuration or user-data file, or the baked configuration, offline.
import { readFileWithin } from "../config/bounds";
import { validateFile } from "../config/validate";
import { ConfigError, describeCause } from "../core/errors";
import type { Session } from "./session";
import { exitCodes } from "./session";
import { configFrom, readUserDataFile, resolvePath } from "../wiring/inputs";

export async function validate(s: Session, file: string | undefined): Promise<number> {
  if (file !== undefined) {
    const path = resolvePath(s, file);
    let content: Buffer;
    try {
      content = await readFileWithin(path);
    } catch (error) {
      throw new ConfigError(`cannot read: ${describeCause(error)}`, { source: path });
    }
    const result = await validateFile(path, content);
    s.o.stdout(`${path}: valid ${result.kind} (${result.sources.join(", ") || "no bootlace configuration"})\n`);
    return exitCodes.ok;
  }
  const loaded = await configFrom(s, await readUserDataFile(s));
  s.o.stdout(`valid configuration (${loaded.sources.join(", ") || "defaults only"})\n`);
  return exitCodes.ok;
}
