// iam-policy: prints the IAM policy the effective configuration needs, read as validate reads it (no IMDS, no AWS).
import { actions as allActions } from "../actions";
import { policyFor } from "../aws/iam";
import type { Session } from "./session";
import { exitCodes } from "./session";
import { configFrom, readUserDataFile } from "../wiring/inputs";

export async function iamPolicy(s: Session): Promise<number> {
  const loaded = await configFrom(s, await readUserDataFile(s));
  const policy = policyFor(loaded.config, s.o.actions ?? allActions);
  s.log.info(`policy for ${loaded.sources.join(", ") || "defaults only"}`, {
    statements: policy.Statement.length,
    ...(loaded.profile !== undefined && { profile: loaded.profile }),
  });
  s.o.stdout(JSON.stringify(policy, null, 2) + "\n");
  return exitCodes.ok;
}
