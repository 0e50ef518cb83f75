// The instance metadata service as bootlace needs it: reachable with a token, the instance's tags exposed, and the
// Auto Scaling lifecycle state.
import type { Env } from "../aws/clients";
import { describeCause } from "../core/errors";
import type { InstanceFacts } from "../instance/facts";
import type { MetadataReader } from "../instance/imds";
import { ImdsForbiddenError, tokenReplyLost } from "../instance/imds";
import type { Tags } from "../instance/tags";
import type { CheckResult } from "./check";
import { fail, ok, warn } from "./check";

const modify = (instance: string, option: string): string =>
  `aws ec2 modify-instance-metadata-options --instance-id ${instance} ${option} (or the same in the launch template)`;

export function imdsOk(endpoint: string, instance: InstanceFacts): CheckResult {
  return ok("imds", `IMDSv2 at ${endpoint} gave a token and the metadata of ${instance.id} (${instance.az})`);
}

/** Why reading the instance's metadata failed, from what the IMDS client saw. */
export function imdsFailure(error: unknown, env: Env): CheckResult {
  if (error instanceof ImdsForbiddenError) {
    return fail(
      "imds",
      "IMDS answered 403 Forbidden: the metadata service is disabled for this instance (HttpEndpoint=disabled), " +
        "or a proxy added X-Forwarded-For to the token request",
      `${modify("<instance-id>", "--http-endpoint enabled")}; keep 169.254.169.254 out of any proxy (NO_PROXY)`,
    );
  }
  if (tokenReplyLost(error)) {
    return fail(
      "imds",
      "the token request (PUT /latest/api/token) was accepted but its reply never came: the hop limit " +
        "(HttpPutResponseHopLimit 1) drops it when bootlace runs in a container or behind a proxy",
      modify("<instance-id>", "--http-put-response-hop-limit 2"),
    );
  }
  const mode = env.AWS_EC2_METADATA_SERVICE_ENDPOINT ? undefined : env.AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE;
  if (mode?.toLowerCase() === "ipv6") {
    return fail(
      "imds",
      `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is IPv6 and [fd00:ec2::254] does not answer (an IPv4-only instance, ` +
        `or its IPv6 endpoint off): ${describeCause(error)}`,
      `unset AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE (IPv4), or ${modify("<instance-id>", "--http-protocol-ipv6 enabled")} on a Nitro instance in a subnet with IPv6`,
    );
  }
  return fail(
    "imds",
    describeCause(error),
    "run doctor on the EC2 instance itself, with 169.254.169.254 reachable (no firewall rule or proxy in the way)",
  );
}

export function imdsTags(instance: InstanceFacts, tags: Tags | undefined): CheckResult {
  if (tags !== undefined) return ok("imds tags", `IMDS exposes this instance's ${Object.keys(tags).length} tags`);
  return warn(
    "imds tags",
    "IMDS does not expose this instance's tags (InstanceMetadataTags off): bootlace reads them with " +
      "ec2:DescribeInstances instead, one more call (and permission) per run",
    modify(instance.id, "--instance-metadata-tags enabled"),
  );
}

/** What each lifecycle state means for bootlace, when it is not simply serving (InService, or a warm pool's). */
const lifecycleAdvice: Record<string, [cause: string, fix: string]> = {
  Standby: [
    "the instance is in Standby: its group's load balancers send it no traffic",
    "aws autoscaling exit-standby --instance-ids <id> --auto-scaling-group-name <group>",
  ],
  Detached: ["the instance is being detached from its Auto Scaling group", "nothing, if that is intended"],
  Terminated: [
    "the Auto Scaling group is terminating this instance",
    "nothing: `bootlace stop` undoes the wiring at shutdown",
  ],
};

export async function lifecycle(imds: MetadataReader): Promise<CheckResult> {
  const state = (await imds.getText("meta-data/autoscaling/target-lifecycle-state"))?.trim();
  if (state === undefined) return ok("lifecycle", "not in an Auto Scaling group");
  const advice = lifecycleAdvice[state];
  if (advice) return warn("lifecycle", `${state}: ${advice[0]}`, advice[1]);
  return ok("lifecycle", `Auto Scaling lifecycle state ${state}`);
}
