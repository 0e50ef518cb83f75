// Credentials and the clock: who AWS says the credentials are (sts:GetCallerIdentity, which needs no permission), in
// which account, and how far this clock is from the Date of AWS's answer (SigV4 refuses requests 5 minutes off).
import type { Aws, SdkCommand } from "../aws/clients";
import { codeOf, describeCause } from "../core/errors";
import type { InstanceFacts } from "../instance/facts";
import type { MetadataReader } from "../instance/imds";
import type { CheckResult } from "./check";
import { fail, ok, warn } from "./check";

const MINUTE = 60_000;
/** SigV4 refuses a request signed more than this far from AWS's time. */
const SIGV4_LIMIT_MS = 5 * MINUTE;
const CLOCK_WARN_MS = MINUTE;

const expired = new Set(["ExpiredToken", "ExpiredTokenException", "RequestExpired"]);
const refused = new Set([
  "InvalidClientTokenId",
  "UnrecognizedClientException",
  "AuthFailure",
  "SignatureDoesNotMatch",
  "InvalidAccessKeyId",
]);

/** Records the Date header of every answer the command gets (errors included) before the SDK parses it. */
function seeingDate<O>(command: SdkCommand<O>, seen: (date: string) => void): SdkCommand<O> {
  command.middlewareStack.add(
    (next) => async (args) => {
      const out = await next(args);
      const date = (out.response as { headers?: Record<string, string | undefined> }).headers?.date;
      if (date) seen(date);
      return out;
    },
    { step: "deserialize", priority: "low", name: "bootlaceDoctorDate" },
  );
  return command;
}

/** Where the credentials should come from: keys handed in (environment, or injected), else the instance profile. */
export interface CredentialSource {
  keysGiven: boolean;
}

export async function credentialsAndClock(
  aws: Aws,
  imds: MetadataReader,
  instance: InstanceFacts,
  source: CredentialSource,
  now: () => number,
): Promise<CheckResult[]> {
  // Without keys and without a profile there is nothing to wait for: say so at once.
  const profile = source.keysGiven ? undefined : await imds.getText("meta-data/iam/info");
  if (!source.keysGiven && profile === undefined) return [noProfile(), clockLine(undefined, 0)];
  // A profile whose credentials IMDS does not serve yet: the agent's provider would wait to the deadline for them;
  // doctor says so at once.
  if (!source.keysGiven && (await imds.getText("meta-data/iam/security-credentials/")) === undefined) {
    const error = Object.assign(new Error("meta-data/iam/security-credentials/ is absent"), {
      name: "CredentialsUnavailableError",
    });
    return [credentialsFailure(error, profile), clockLine(undefined, 0)];
  }
  let date: string | undefined;
  let seenAt = 0;
  const remember = (d: string): void => {
    date = d;
    seenAt = now();
  };
  let line: CheckResult;
  try {
    const who = await aws.call("sts", "these credentials", (sdk) =>
      seeingDate(new sdk.GetCallerIdentityCommand({}), remember),
    );
    line = accountLine(who.Account, who.Arn, instance);
  } catch (error) {
    line = credentialsFailure(error, profile);
  }
  return [line, clockLine(date, seenAt)];
}

function accountLine(account: string | undefined, arn: string | undefined, instance: InstanceFacts): CheckResult {
  if (instance.accountId !== undefined && account !== instance.accountId) {
    return fail(
      "credentials",
      `the credentials are ${arn ?? "unknown"} in account ${account ?? "unknown"}, but this instance is in account ` +
        `${instance.accountId}: something overrides the instance profile`,
      "remove the credentials that come first in the SDK's chain (AWS_ACCESS_KEY_ID or AWS_PROFILE in " +
        "/etc/default/bootlace or the environment, root's ~/.aws/credentials)",
    );
  }
  return ok("credentials", `${arn ?? "unknown"} (account ${account ?? "unknown"})`);
}

function noProfile(): CheckResult {
  return fail(
    "credentials",
    "no credentials: this instance has no instance profile, and AWS_ACCESS_KEY_ID is not set",
    "aws ec2 associate-iam-instance-profile --instance-id <id> --iam-instance-profile Name=<profile> " +
      "(its role holding what `bootlace iam-policy` prints)",
  );
}

/** Codes of "no credentials to sign with": the SDK's chain's, and bootlace's own provider's. */
const unavailable = new Set(["CredentialsProviderError", "CredentialsUnavailableError"]);

function credentialsFailure(error: unknown, profile: string | undefined): CheckResult {
  const code = codeOf(error);
  if (unavailable.has(code)) {
    const arn = profile && /"InstanceProfileArn"\s*:\s*"([^"]+)"/.exec(profile)?.[1];
    return fail(
      "credentials",
      `${arn || "the instance profile"} is attached, but IMDS serves no credentials for it yet (they can take a ` +
        `minute after boot or after the profile is associated): ${describeCause(error)}`,
      "wait a minute and run doctor again; if it lasts, check that the profile has a role (aws iam get-instance-profile)",
    );
  }
  if (expired.has(code)) {
    return fail(
      "credentials",
      `AWS refuses the credentials as expired (${code})`,
      "credentials from the environment or files do not renew: remove them and use the instance profile",
    );
  }
  if (refused.has(code)) {
    return fail(
      "credentials",
      `AWS does not accept the credentials (${code}): ${describeCause(error)}`,
      "remove stale keys from the environment or files; use the instance profile",
    );
  }
  return fail("credentials", `sts:GetCallerIdentity failed: ${describeCause(error)}`, "see the cause");
}

/** How far this clock is from AWS's, from the Date of an answer (second resolution; the round trip adds a little). */
export function clockLine(date: string | undefined, seenAt: number): CheckResult {
  const aws = date === undefined ? NaN : Date.parse(date);
  if (Number.isNaN(aws)) {
    return warn("clock", "not checked: no answer from AWS to compare with", "fix the credentials first");
  }
  const skew = seenAt - aws;
  const off = `this clock is ${seconds(Math.abs(skew))} ${skew > 0 ? "ahead of" : "behind"} AWS (Date: ${date})`;
  const fix =
    "sync it: chronyc makestep (the Amazon Time Sync Service is at 169.254.169.123); order bootlace after " +
    "time-sync.target";
  if (Math.abs(skew) > SIGV4_LIMIT_MS) return fail("clock", `${off}: AWS refuses requests signed 5 minutes off`, fix);
  if (Math.abs(skew) > CLOCK_WARN_MS) return warn("clock", `${off}: past 5 minutes AWS refuses every request`, fix);
  return ok("clock", `within ${seconds(Math.max(Math.abs(skew), 1000))} of AWS`);
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  return s >= 120 ? `${Math.round(s / 60)} min` : `${s} s`;
}
