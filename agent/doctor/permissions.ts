// Permissions: each IAM action the configuration needs (what `bootlace iam-policy` prints), tried without changing
// anything — EC2's DryRun for its own actions, the read itself for other services' reads — and, for the changes no
// dry run can tell, a plain word that they cannot be told without making them.
import type { Action } from "../actions/types";
import type { Aws, SdkCommand, Sdks } from "../aws/clients";
import { policyFor } from "../aws/iam";
import type { Config } from "../config/schema";
import { codeOf, describeCause } from "../core/errors";
import type { InstanceFacts } from "../instance/facts";
import { canonicalDnsName } from "../core/names";
import type { Tags } from "../instance/tags";
import { renderRequired, templateView } from "../template/render";
import type { CheckResult } from "./check";
import { fail, ok, warn } from "./check";

interface Probing {
  aws: Aws;
  config: Config;
  instance: InstanceFacts;
  tags(): Promise<Tags>;
}

/** A probe that cannot be made: the resource it needs could not be found. */
class Unknowable extends Error {}

type Probe = { how: string; run: (p: Probing) => Promise<unknown> };

type Ec2Command<O> = (sdk: Sdks["ec2"]) => SdkCommand<O>;

/**
 * EC2 answers a DryRun it would allow with the error DryRunOperation, and one it would refuse as it refuses the call.
 * `prepare` finds what the request needs (an address to try) and returns the command.
 */
function dryRun<O>(prepare: (p: Probing) => Ec2Command<O> | Promise<Ec2Command<O>>): Probe {
  return {
    how: "EC2 DryRun",
    run: async (p) => {
      const make = await prepare(p);
      try {
        await p.aws.call("ec2", "dry run", make);
      } catch (error) {
        if (codeOf(error) === "DryRunOperation") return;
        throw error;
      }
      throw new Unknowable("EC2 answered the DryRun request as if it were real");
    },
  };
}

const read = (run: Probe["run"]): Probe => ({ how: "read", run });

/** An Elastic IP the configuration would associate: the fixed one, or any of the pool. */
async function anAddress(p: Probing): Promise<string> {
  const eip = p.config.elastic_ip;
  if (eip?.allocation_id !== undefined) return eip.allocation_id;
  const view = templateView(p.instance, await p.tags());
  const filters = Object.entries(eip?.pool?.tags ?? {}).map(([k, v]) => ({
    Name: `tag:${k}`,
    Values: [renderRequired(v, view, `elastic_ip.pool.tags.${k}`)],
  }));
  const out = await p.aws.call("ec2", "the pool", (sdk) => new sdk.DescribeAddressesCommand({ Filters: filters }));
  const id = out.Addresses?.find((a) => a.AllocationId)?.AllocationId;
  if (id === undefined) throw new Unknowable("no address in the pool to try it with");
  return id;
}

/** A hosted zone the configuration names: by id, or the first found by name. */
async function aZone(p: Probing): Promise<string> {
  const record = p.config.dns?.records[0];
  if (record?.zone_id !== undefined) return record.zone_id.replace(/^\/hostedzone\//, "");
  const name = canonicalDnsName(record?.zone ?? "");
  const out = await p.aws
    .call("route53", name, (sdk) => new sdk.ListHostedZonesByNameCommand({ DNSName: name }))
    .catch((error: unknown) => {
      throw new Unknowable(`needs the zone's id: ${describeCause(error)}`);
    });
  const zone = out.HostedZones?.find((z) => canonicalDnsName(z.Name ?? "") === name);
  if (zone?.Id === undefined) throw new Unknowable(`no hosted zone named ${name}`);
  return zone.Id.replace(/^\/hostedzone\//, "");
}

/** A target group the configuration names: by ARN, or found by name. */
async function aGroup(p: Probing): Promise<string> {
  const group = p.config.load_balancer?.target_groups[0];
  if (group?.arn !== undefined) return group.arn;
  const out = await p.aws
    .call("elbv2", group?.name ?? "", (sdk) => new sdk.DescribeTargetGroupsCommand({ Names: [group?.name ?? ""] }))
    .catch((error: unknown) => {
      throw new Unknowable(`needs the group's ARN: ${describeCause(error)}`);
    });
  const arn = out.TargetGroups?.[0]?.TargetGroupArn;
  if (arn === undefined) throw new Unknowable(`no target group named ${group?.name ?? ""}`);
  return arn;
}

/** How each action is tried; an action not here cannot be told without making the change. */
const probes: Record<string, Probe> = {
  "ec2:DescribeAddresses": dryRun(() => (sdk) => new sdk.DescribeAddressesCommand({ DryRun: true })),
  "ec2:DescribeInstances": dryRun(
    (p) => (sdk) => new sdk.DescribeInstancesCommand({ DryRun: true, InstanceIds: [p.instance.id] }),
  ),
  "ec2:AssociateAddress": dryRun(async (p) => {
    const AllocationId = await anAddress(p);
    const { interfaceId, id } = p.instance;
    const target = interfaceId !== undefined ? { NetworkInterfaceId: interfaceId } : { InstanceId: id };
    return (sdk) =>
      new sdk.AssociateAddressCommand({ DryRun: true, AllocationId, ...target, AllowReassociation: false });
  }),
  "route53:ListHostedZonesByName": read((p) =>
    p.aws.call("route53", "zones", (sdk) => new sdk.ListHostedZonesByNameCommand({ MaxItems: 1 })),
  ),
  "route53:GetHostedZone": read(async (p) => {
    const id = await aZone(p);
    return p.aws.call("route53", id, (sdk) => new sdk.GetHostedZoneCommand({ Id: id }));
  }),
  "route53:ListResourceRecordSets": read(async (p) => {
    const id = await aZone(p);
    return p.aws.call("route53", id, (sdk) => new sdk.ListResourceRecordSetsCommand({ HostedZoneId: id, MaxItems: 1 }));
  }),
  "elasticloadbalancing:DescribeTargetGroups": read((p) =>
    p.aws.call("elbv2", "groups", (sdk) => new sdk.DescribeTargetGroupsCommand({ PageSize: 1 })),
  ),
  "elasticloadbalancing:DescribeTargetHealth": read(async (p) => {
    const arn = await aGroup(p);
    return p.aws.call("elbv2", arn, (sdk) => new sdk.DescribeTargetHealthCommand({ TargetGroupArn: arn }));
  }),
  "elasticloadbalancing:DescribeTargetGroupAttributes": read(async (p) => {
    const arn = await aGroup(p);
    return p.aws.call("elbv2", arn, (sdk) => new sdk.DescribeTargetGroupAttributesCommand({ TargetGroupArn: arn }));
  }),
};

const deniedCodes = new Set(["UnauthorizedOperation", "AccessDenied", "AccessDeniedException"]);

/** A refusal: the code says so, or (Route 53 behind moto, which sends no code) the status is 403. */
export function isDenied(error: unknown): boolean {
  if (deniedCodes.has(codeOf(error))) return true;
  const cause = (error as { cause?: { $metadata?: { httpStatusCode?: number } } }).cause;
  return cause?.$metadata?.httpStatusCode === 403;
}

async function tryAction(iamAction: string, probe: Probe, p: Probing): Promise<CheckResult> {
  const name = `permission ${iamAction}`;
  try {
    await probe.run(p);
    return ok(name, `allowed (${probe.how})`);
  } catch (error) {
    const byHand = "compare the role's policy with `bootlace iam-policy` by hand";
    if (error instanceof Unknowable) return warn(name, `could not tell: ${error.message}`, byHand);
    if (isDenied(error)) {
      return fail(
        name,
        `denied: ${describeCause(error)}`,
        `allow ${iamAction} in the instance role's policy (\`bootlace iam-policy\` prints what this configuration needs)`,
      );
    }
    return warn(name, `could not tell: ${describeCause(error)}`, byHand);
  }
}

export async function permissions(p: Probing, actions: readonly Action[]): Promise<CheckResult[]> {
  const needed = [...new Set(policyFor(p.config, actions).Statement.flatMap((s) => s.Action))];
  if (needed.length === 0) return [ok("permissions", "this configuration needs no AWS permission")];
  const lines = await Promise.all(needed.filter((a) => probes[a]).map((a) => tryAction(a, probes[a]!, p)));
  const untold = needed.filter((a) => !probes[a]);
  if (untold.length > 0) {
    lines.push(
      ok(
        "permissions",
        `cannot be told without calling them (no dry run in their API), so not tried: ${untold.join(", ")}; ` +
          "compare the role's policy with `bootlace iam-policy`",
      ),
    );
  }
  return lines;
}
