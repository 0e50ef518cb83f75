// bootlace iam-policy for the DNS features of fleets: what shared names, reverse records and the reaper add.
import { actions } from "../../agent/actions";
import type { PolicyDocument } from "../../agent/aws/iam";
import { policyFor } from "../../agent/aws/iam";
import { configSchema } from "../../agent/config/schema";

const policy = (raw: unknown): PolicyDocument => policyFor(configSchema.parse(raw), actions);
const statement = (p: PolicyDocument, sid: string) => p.Statement.find((s) => s.Sid === sid);
const condition = (p: PolicyDocument, kind: string, key: string) =>
  statement(p, "Route53ChangeRecords")?.Condition?.[kind]?.[key];

const record = { zone_id: "Z0123456789ABC", name: "api.example.internal" };

describe("Route 53 permissions for fleets", () => {
  it("a shared name: its ownership records, one per set identifier, and DELETE (its own simple record gives way)", () => {
    const p = policy({
      dns: { records: [{ ...record, set_identifier: "{{instance.id}}", multivalue: true }] },
    });
    expect(condition(p, "ForAllValues:StringLike", "route53:ChangeResourceRecordSetsNormalizedRecordNames")).toEqual([
      "api.example.internal",
      "*._bootlace-a.api.example.internal",
    ]);
    expect(condition(p, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsActions")).toEqual([
      "CREATE",
      "UPSERT",
      "DELETE",
    ]);
    expect(statement(p, "Route53ChangeRecords")?.Resource).toEqual(["arn:aws:route53:::hostedzone/Z0123456789ABC"]);
  });

  it("reverse records: the VPC's zones, PTR names under in-addr.arpa and ip6.arpa, any zone, DELETE", () => {
    const p = policy({
      dns: {
        reverse: true,
        records: [record, { ...record, name: "v6.example.internal", type: "AAAA", value: "ipv6" }],
      },
    });
    expect(statement(p, "Route53FindZones")).toEqual({
      Sid: "Route53FindZones",
      Effect: "Allow",
      Action: ["route53:ListHostedZonesByVPC"],
      Resource: "*",
    });
    expect(statement(p, "Route53FindReverseZones")?.Action).toEqual(["ec2:DescribeVpcs"]);
    expect(statement(p, "Route53ChangeRecords")?.Resource).toEqual(["arn:aws:route53:::hostedzone/*"]);
    expect(condition(p, "ForAllValues:StringLike", "route53:ChangeResourceRecordSetsNormalizedRecordNames")).toEqual(
      expect.arrayContaining(["*.in-addr.arpa", "*.ip6.arpa"]),
    );
    expect(condition(p, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsRecordTypes")).toEqual([
      "A",
      "AAAA",
      "TXT",
      "PTR",
    ]);
    expect(condition(p, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsActions")).toContain("DELETE");
  });

  it("a record's own reverse: true asks for the same as dns.reverse", () => {
    const p = policy({ dns: { records: [{ ...record, reverse: true }] } });
    expect(statement(p, "Route53FindReverseZones")).toBeDefined();
    expect(condition(p, "ForAllValues:StringLike", "route53:ChangeResourceRecordSetsNormalizedRecordNames")).toContain(
      "*.in-addr.arpa",
    );
  });

  it("the reaper: ec2:DescribeInstances to see which owners run, and DELETE", () => {
    const p = policy({ dns: { reap: true, records: [record] } });
    expect(statement(p, "DnsReapOwners")).toEqual({
      Sid: "DnsReapOwners",
      Effect: "Allow",
      Action: ["ec2:DescribeInstances"],
      Resource: "*",
    });
    expect(condition(p, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsActions")).toContain("DELETE");
  });

  it("none of it without those keys", () => {
    const p = policy({ dns: { records: [record] } });
    const all = p.Statement.flatMap((s) => s.Action);
    expect(all).not.toContain("route53:ListHostedZonesByVPC");
    expect(all).not.toContain("ec2:DescribeInstances");
    expect(all).not.toContain("ec2:DescribeVpcs");
    expect(condition(p, "ForAllValues:StringEquals", "route53:ChangeResourceRecordSetsActions")).toEqual([
      "CREATE",
      "UPSERT",
    ]);
  });
});
