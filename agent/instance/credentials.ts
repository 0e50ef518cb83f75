// Where bootlace's AWS credentials come from: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the agent's environment when
// both are set, otherwise the instance profile, read through bootlace's own IMDS client.
//
// Not the SDK's instance-metadata provider: on any failure of its token request other than 400 it falls back to
// tokenless IMDSv1 GETs (the path SSRF attacks use to take instance credentials), and it gives up after a few seconds
// while an instance profile that is still being associated at boot can take longer. Here every read is IMDSv2 with the
// client's token and retries, and a missing profile is waited for until the run's deadline.
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from "@smithy/types";
import type { Clock } from "../core/clock";
import { describeCause } from "../core/errors";
import type { Logger } from "../core/log";
import { poll, type Deadline } from "../core/retry";
import type { MetadataReader } from "./imds";

const ROLES_PATH = "meta-data/iam/security-credentials/";
/** Fetch new credentials this long before they expire (IMDS has the next ones well before that). */
const REFRESH_BEFORE_MS = 15 * 60_000;
/** After this long without credentials, one line at warn level: an instance profile that never comes looks like a hang. */
const SLOW_WAIT_NOTICE_MS = 5000;
/** Variables of the SDK's default chain that bootlace does not follow; said once, so nobody wonders why. */
const NOT_FOLLOWED = [
  "AWS_PROFILE",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];
const HINT =
  "Attach an instance profile whose role allows what bootlace does (`bootlace iam-policy` prints that policy): " +
  "aws ec2 associate-iam-instance-profile --instance-id <id> --iam-instance-profile Name=<profile>; " +
  "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in bootlace's environment";

/** No credentials to sign with: every AWS call fails with this, and the action with it (exit 1). */
export class CredentialsUnavailableError extends Error {
  override readonly name = "CredentialsUnavailableError";
}

export interface CredentialsOptions {
  /** The agent's environment (not necessarily process.env). */
  env: Record<string, string | undefined>;
  /** IMDSv2 reads with their own retries, bounded by the same deadline. */
  imds: MetadataReader;
  clock: Clock;
  /** Waiting for an instance profile ends here. */
  deadline: Deadline;
  log: Logger;
  /** Jitter source for the waits. */
  random?: () => number;
}

/** The provider every AWS client of a run shares: the environment's keys, else the instance profile's. */
export function credentialsProvider(o: CredentialsOptions): AwsCredentialIdentityProvider {
  const ignored = NOT_FOLLOWED.filter((name) => o.env[name]);
  if (ignored.length > 0) {
    o.log.warn(
      `${ignored.join(", ")} set but not followed: bootlace takes credentials from AWS_ACCESS_KEY_ID and ` +
        `AWS_SECRET_ACCESS_KEY, or else from the instance profile`,
    );
  }
  const fromEnv = environmentCredentials(o.env, o.log);
  if (fromEnv) {
    o.log.debug("credentials from the environment", { accessKeyId: fromEnv.accessKeyId });
    return () => Promise.resolve(fromEnv);
  }
  return instanceProfileCredentials(o);
}

/** AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (with AWS_SESSION_TOKEN, AWS_CREDENTIAL_EXPIRATION), as the SDK reads them. */
export function environmentCredentials(
  env: Record<string, string | undefined>,
  log: Logger,
): AwsCredentialIdentity | undefined {
  const accessKeyId = env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) {
    if (accessKeyId || secretAccessKey) {
      const [set, missing] = accessKeyId
        ? ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
        : ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"];
      log.warn(`${set} is set without ${missing}: not used; credentials come from the instance profile`);
    }
    return undefined;
  }
  const expiration = env.AWS_CREDENTIAL_EXPIRATION ? new Date(env.AWS_CREDENTIAL_EXPIRATION) : undefined;
  if (expiration && Number.isNaN(expiration.getTime())) {
    log.warn(`AWS_CREDENTIAL_EXPIRATION is not a date: ignored`, { value: env.AWS_CREDENTIAL_EXPIRATION });
  }
  return {
    accessKeyId,
    secretAccessKey,
    ...(env.AWS_SESSION_TOKEN && { sessionToken: env.AWS_SESSION_TOKEN }),
    ...(expiration && !Number.isNaN(expiration.getTime()) && { expiration }),
  };
}

/** One look at IMDS: the credentials, or why there are none yet. */
type Reading = { credentials: AwsCredentialIdentity; role: string } | { missing: string };

/**
 * The instance profile's credentials over IMDSv2. Concurrent callers share one fetch; the result is kept until shortly
 * before it expires. While there is no profile (or its credentials are not ready) it looks again with jittered,
 * growing waits until the deadline, then fails with what it saw and what to do about it.
 */
export function instanceProfileCredentials(o: CredentialsOptions): AwsCredentialIdentityProvider {
  let held: { credentials: AwsCredentialIdentity; refreshAt: number } | undefined;
  let inFlight: Promise<AwsCredentialIdentity> | undefined;
  let failed: Error | undefined;

  const fetch = async (): Promise<AwsCredentialIdentity> => {
    const started = o.clock.now();
    let last = "nothing read yet";
    let warned = false;
    let found: { credentials: AwsCredentialIdentity; role: string } | undefined;
    try {
      const result = await poll(
        async () => {
          const reading = await readOnce(o.imds, o.clock.now());
          if ("credentials" in reading) return reading;
          last = reading.missing;
          const waited = o.clock.now() - started;
          o.log.debug("no instance-profile credentials yet", { why: last, waitedMs: waited });
          if (!warned && waited >= SLOW_WAIT_NOTICE_MS) {
            warned = true;
            o.log.warn("still waiting for the instance profile's credentials", {
              waitedS: Math.round(waited / 1000),
              why: last,
            });
          }
          return undefined;
        },
        {
          label: "instance-profile credentials",
          clock: o.clock,
          deadline: o.deadline,
          initialMs: 250,
          maxMs: 5000,
          ...(o.random && { random: o.random }),
        },
      );
      if (result.done) found = result.value;
    } catch (error) {
      // IMDS itself gave up (the deadline, a 403) or the wait was cut short by the deadline.
      if (!o.deadline.signal.aborted) last = describeCause(error);
    }
    if (!found) {
      const waitedS = ((o.clock.now() - started) / 1000).toFixed(1);
      throw new CredentialsUnavailableError(
        `no credentials from the instance profile within the deadline (waited ${waitedS} s): ${last}. ${HINT}`,
      );
    }
    const { credentials, role } = found;
    const now = o.clock.now();
    const left = (credentials.expiration?.getTime() ?? Infinity) - now;
    // Short-lived ones (IMDS is about to rotate them) are used for half their time, then asked for again.
    held = { credentials, refreshAt: now + (left > 2 * REFRESH_BEFORE_MS ? left - REFRESH_BEFORE_MS : left / 2) };
    o.log.debug("credentials from the instance profile", {
      role,
      accessKeyId: credentials.accessKeyId,
      expires: credentials.expiration?.toISOString() ?? "never",
    });
    return credentials;
  };

  return () => {
    if (held && o.clock.now() < held.refreshAt) return Promise.resolve(held.credentials);
    // After the deadline nothing will come: every later call gets the same answer at once.
    if (failed && o.deadline.signal.aborted) return Promise.reject(failed);
    inFlight ??= fetch()
      .catch((error: unknown) => {
        failed = error as Error;
        throw error;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };
}

/** meta-data/iam/security-credentials/ names the role; its document holds the credentials (reference, section 1). */
async function readOnce(imds: MetadataReader, now: number): Promise<Reading> {
  const listing = await imds.getText(ROLES_PATH);
  if (listing === undefined) {
    return { missing: `IMDS has no ${ROLES_PATH} (no instance profile is associated with this instance)` };
  }
  const role = listing.split("\n")[0]?.trim() ?? "";
  if (role === "") return { missing: `IMDS lists no role under ${ROLES_PATH}` };
  // IAM role names are [\w+=,.@-]{1,64}; anything else is not a name to put in a path.
  if (!/^[\w+=,.@-]{1,64}$/.test(role)) return { missing: `IMDS lists an odd role name ${JSON.stringify(role)}` };
  const text = await imds.getText(`${ROLES_PATH}${role}`);
  if (text === undefined) return { missing: `IMDS has no credentials for role ${role} (the profile is changing?)` };
  let doc: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null) throw new Error("not an object");
    doc = parsed as Record<string, unknown>;
  } catch (error) {
    return { missing: `the credentials of role ${role} are not JSON (${describeCause(error)})` };
  }
  if (doc.Code !== "Success") {
    const message = typeof doc.Message === "string" ? `: ${doc.Message}` : "";
    return { missing: `IMDS reports ${String(doc.Code)} for role ${role}${message}` };
  }
  const { AccessKeyId, SecretAccessKey, Token, Expiration } = doc;
  if (
    typeof AccessKeyId !== "string" ||
    AccessKeyId === "" ||
    typeof SecretAccessKey !== "string" ||
    !SecretAccessKey
  ) {
    return { missing: `the credentials of role ${role} lack AccessKeyId or SecretAccessKey` };
  }
  const expiration = typeof Expiration === "string" ? new Date(Expiration) : undefined;
  if (expiration !== undefined && Number.isNaN(expiration.getTime())) {
    return { missing: `the credentials of role ${role} have an unreadable Expiration ${JSON.stringify(Expiration)}` };
  }
  if (expiration !== undefined && expiration.getTime() <= now) {
    return { missing: `the credentials of role ${role} expired at ${expiration.toISOString()}` };
  }
  return {
    role,
    credentials: {
      accessKeyId: AccessKeyId,
      secretAccessKey: SecretAccessKey,
      ...(typeof Token === "string" && Token !== "" && { sessionToken: Token }),
      ...(expiration && { expiration }),
    },
  };
}
