// The instance's own tags: from IMDS when it exposes them (InstanceMetadataTags=enabled), else from the EC2 API —
// read at most once per instance context, however many actions ask, and only when one does.
import type { PolicyStatement } from "../actions/types";
import type { Aws } from "../aws/clients";
import type { Logger } from "../core/log";
import type { InstanceFacts } from "./facts";

export type Tags = Record<string, string>;

/**
 * The instance's tags, as every action sees them: IMDS's when it exposed them, else one DescribeInstances made on
 * first use. A failed read is not remembered, so a later pass of `watch` tries again.
 */
export function tagsReader(
  facts: InstanceFacts,
  imdsTags: Tags | undefined,
  aws: Aws,
  log: Logger,
): () => Promise<Tags> {
  if (imdsTags !== undefined) return () => Promise.resolve(imdsTags);
  let read: Promise<Tags> | undefined;
  return () => {
    if (!read) {
      read = readFromApi(facts, aws, log);
      read.catch(() => (read = undefined));
    }
    return read;
  };
}

async function readFromApi(facts: InstanceFacts, aws: Aws, log: Logger): Promise<Tags> {
  log.info("IMDS does not expose this instance's tags (InstanceMetadataTags is off): reading them from EC2");
  const out = await aws.call("ec2", facts.id, (sdk) => new sdk.DescribeInstancesCommand({ InstanceIds: [facts.id] }));
  const self = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === facts.id);
  return Object.fromEntries((self?.Tags ?? []).map((t) => [t.Key ?? "", t.Value ?? ""]));
}

/** What finding peers and reading this instance's tags from the API need (one statement, so the policy has it once). */
export const describeInstancesStatement: PolicyStatement = {
  Sid: "BootlaceDescribeInstances",
  Effect: "Allow",
  // DescribeInstances supports no resource-level permissions.
  Action: ["ec2:DescribeInstances"],
  Resource: "*",
};
