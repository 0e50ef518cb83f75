// The instance's own tags: from IMDS when it exposes them (InstanceMetadataTags=enabled), else from the EC2 API —
// read once per set of instance facts, however many actions ask.
import { call } from "../aws/clients";
import type { PolicyStatement } from "../actions/types";
import type { AwsClients } from "../aws/clients";
import type { InstanceFacts } from "./facts";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";

const fromApi = new WeakMap<InstanceFacts, Promise<Record<string, string>>>();

export interface TagsContext {
  instance: InstanceFacts;
  aws: AwsClients;
  deadline: Deadline;
  log: Logger;
}

export function instanceTags(ctx: TagsContext): Promise<Record<string, string>> {
  if (ctx.instance.tags) return Promise.resolve(ctx.instance.tags);
  let tags = fromApi.get(ctx.instance);
  if (!tags) {
    tags = readTags(ctx);
    // A failed read is not remembered: a later pass of `watch` tries again.
    tags.catch(() => fromApi.delete(ctx.instance));
    fromApi.set(ctx.instance, tags);
  }
  return tags;
}

async function readTags(ctx: TagsContext): Promise<Record<string, string>> {
  ctx.log.info("IMDS does not expose this instance's tags (InstanceMetadataTags is off): reading them from EC2");
  const { client, sdk } = await ctx.aws.ec2();
  const out = await call("DescribeInstances", ctx.instance.id, () =>
    client.send(new sdk.DescribeInstancesCommand({ InstanceIds: [ctx.instance.id] }), {
      abortSignal: ctx.deadline.signal,
    }),
  );
  const self = out.Reservations?.flatMap((r) => r.Instances ?? []).find((i) => i.InstanceId === ctx.instance.id);
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
