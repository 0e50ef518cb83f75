// The inputs a command reads from its command line: paths, the --user-data file and the effective configuration.
// Apart from the wiring procedure so that validate and iam-policy load them without the actions, the AWS door and the
// IMDS client.
import { resolve } from "node:path";
import { readFileWithin } from "../config/bounds";
import type { LoadedConfig } from "../config/load";
import { loadConfig } from "../config/load";
import { ConfigError, describeCause } from "../core/errors";
import type { Session } from "../commands/session";

/** A path given on the command line, taken from the agent's working directory. */
export function resolvePath(s: Session, file: string): string {
  return resolve(s.o.cwd ?? process.cwd(), file);
}

/** The --user-data file, when one is given (it replaces IMDS user-data). */
export async function readUserDataFile(s: Session): Promise<Buffer | undefined> {
  if (s.args.userData === undefined) return undefined;
  const path = resolvePath(s, s.args.userData);
  try {
    return await readFileWithin(path);
  } catch (error) {
    throw new ConfigError(`cannot read the user-data file: ${describeCause(error)}`, { source: path });
  }
}

/** The effective configuration: baked files ← profile ← this user-data ← --set flags. */
export function configFrom(s: Session, userData: Buffer | undefined): Promise<LoadedConfig> {
  return loadConfig({
    root: s.args.root,
    ...(s.args.config !== undefined && { configFile: resolvePath(s, s.args.config) }),
    ...(userData !== undefined && { userData }),
    ...(s.args.profile !== undefined && { profile: s.args.profile }),
    sets: s.args.set,
  });
}
