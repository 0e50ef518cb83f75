import { normalizedNamePattern } from "../../agent/actions/dns-permissions";
import { actions } from "../../agent/actions";
import type { PolicyDocument } from "../../agent/aws/iam";
import { policyFor } from "../../agent/aws/iam";
import { configSchema } from "../../agent/config/schema";

const policy = (raw: unknown) => policyFor(configSchema.parse(raw), actions);

/** Every IAM action the policy allows, once each, in order. */
const actionsOf = (p: PolicyDocument): string[] => [...new Set(p.Statement.flatMap((s) => s.Action))];

describe("policyFor", () => {
  it("is empty when nothing needs AWS", () => {
    expect(policy({})).toEqual({ Version: "2012-10-17", Statement: [] });
  });

  it("is the union of the enabled actions' statements only", () => {
    const p = policy({ elastic_ip: { allocation_id: "eipalloc-0abc1234", handoff: 0 } });
    expect(actionsOf(p)).toEqual(["ec2:DescribeAddresses", "ec2:AssociateAddress"]);
  });
});

describe("Auto Scaling permissions", () => {
  it("the handoff reads the holders (and, with an autoscaling section, their groups)", () => {
    expect(actionsOf(policy({ elastic_ip: { allocation_id: "eipalloc-0abc1234" } }))).toEqual([
      "ec2:DescribeAddresses",
      "ec2:AssociateAddress",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
    ]);
    expect(
      actionsOf(
        policy({
          autoscaling: { launch_hook: "off", termination_hook: "off" },
          elastic_ip: { allocation_id: "eipalloc-0abc1234" },
        }),
      ),
    ).toContain("autoscaling:DescribeAutoScalingInstances");
  });

  it("completing and heartbeating lifecycle actions, scoped to the group when the configuration names it", () => {
    expect(policy({ spot: {} })).toEqual({ Version: "2012-10-17", Statement: [] });
    const any = policy({ autoscaling: {} });
    expect(actionsOf(any)).toEqual([
      "autoscaling:DescribeAutoScalingInstances",
      "autoscaling:DescribeLifecycleHooks",
      "autoscaling:CompleteLifecycleAction",
      "autoscaling:RecordLifecycleActionHeartbeat",
    ]);
    const scoped = policy({ autoscaling: { group: "web-asg" } }).Statement.find(
      (s) => s.Sid === "AutoScalingLifecycleActions",
    );
    expect(scoped?.Resource).toBe("arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/web-asg");
    expect(policy({ autoscaling: { launch_hook: "off", termination_hook: "off" } }).Statement).toEqual([]);
  });
});

describe("Route 53 permissions", () => {
  const record = { zone_id: "Z0123456789ABC", name: "{{instance.id}}.example.internal" };

  it("scopes to the hosted zone given by id, and to the record names, types and actions configured", () => {
    const p = policy({ dns: { records: [{ ...record, delete_on_shutdown: true }] } });
    expect(actionsOf(p)).toEqual([
      "route53:GetHostedZone",
      "route53:ListResourceRecordSets",
      "route53:ChangeResourceRecordSets",
      "route53:GetChange",
    ]);
    const change = p.Statement.find((s) => s.Sid === "Route53ChangeRecords");
    expect(change).toEqual({
      Sid: "Route53ChangeRecords",
      Effect: "Allow",
      Action: ["route53:ChangeResourceRecordSets"],
      Resource: ["arn:aws:route53:::hostedzone/Z0123456789ABC"],
      Condition: {
        "ForAllValues:StringLike": {
          "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
            "*.example.internal",
            "_bootlace-a.*.example.internal",
          ],
        },
        "ForAllValues:StringEquals": {
          "route53:ChangeResourceRecordSetsRecordTypes": ["A", "TXT"],
          "route53:ChangeResourceRecordSetsActions": ["CREATE", "UPSERT", "DELETE"],
        },
      },
    });
    expect(p.Statement.find((s) => s.Sid === "Route53WaitForChanges")?.Resource).toBe("arn:aws:route53:::change/*");
  });

  it("needs no GetChange with wait: none, no DELETE without delete_on_shutdown, and finds zones by name", () => {
    const p = policy({ dns: { wait: "none", records: [{ zone: "example.internal", name: "web.example.internal" }] } });
    expect(actionsOf(p)).toEqual([
      "route53:ListHostedZonesByName",
      "route53:ListResourceRecordSets",
      "route53:ChangeResourceRecordSets",
    ]);
    const change = p.Statement.find((s) => s.Sid === "Route53ChangeRecords");
    expect(change?.Resource).toEqual(["arn:aws:route53:::hostedzone/*"]);
    expect(change?.Condition?.["ForAllValues:StringEquals"]?.["route53:ChangeResourceRecordSetsActions"]).toEqual([
      "CREATE",
      "UPSERT",
    ]);
  });

  it("normalises record names as Route 53's condition key does", () => {
    expect(normalizedNamePattern("Web.Example.Internal.")).toBe("web.example.internal");
    expect(normalizedNamePattern("*.example.internal")).toBe("\\052.example.internal");
    expect(normalizedNamePattern("{{instance.id}}-{{{tags.Env}}}.example.internal")).toBe("*-*.example.internal");
  });
});
