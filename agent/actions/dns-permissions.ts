// The least-privilege Route 53 statements a dns configuration needs, for `bootlace iam-policy`.
import type { Config } from "../config/schema";
import { ownerName, zoneIdOf } from "./dns-records";
import type { PolicyStatement } from "./types";

/**
 * A record name as route53:ChangeResourceRecordSetsNormalizedRecordNames compares it (lower case, no trailing dot,
 * other characters as \ddd octal), with each template part ({{instance.id}}) a StringLike wildcard.
 */
export function normalizedNamePattern(template: string): string {
  const literal = (text: string): string =>
    text.toLowerCase().replace(/[^a-z0-9_.-]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}`);
  return template
    .split(/\{\{\{?[^}]*\}\}\}?/)
    .map(literal)
    .join("*")
    .replace(/\.$/, "");
}

export function dnsPermissions(config: Config): PolicyStatement[] {
  const dns = config.dns;
  const records = dns?.records ?? [];
  if (!dns || records.length === 0) return [];
  const reverse = records.some((r) => r.reverse ?? dns.reverse);
  const byName = records.some((r) => r.zone_id === undefined);
  const zones = [
    ...new Set(
      records.map((r) => `arn:aws:route53:::hostedzone/${r.zone_id !== undefined ? zoneIdOf(r.zone_id) : "*"}`),
    ),
  ];
  // The reverse zones are found in the VPC's associations, not named in the configuration.
  const resources =
    reverse || zones.includes("arn:aws:route53:::hostedzone/*") ? ["arn:aws:route53:::hostedzone/*"] : zones;
  // GetHostedZone: a zone given by id, or one of several private zones sharing a name.
  const getZone = records.some((r) => r.zone_id !== undefined || r.private === true);
  const names = [
    ...new Set(
      records.flatMap((r) => {
        // A routing-policy record's ownership record is SET._bootlace-a.NAME, one per set identifier.
        const owner = ownerName(r.name, r.type);
        return [r.name, r.set_identifier !== undefined ? `${r.set_identifier}.${owner}` : owner].map(
          normalizedNamePattern,
        );
      }),
    ),
    // PTR names and their ownership records (_bootlace-ptr.…) in the reverse zones.
    ...(reverse ? reverseZonePatterns(records.map((r) => r.type)) : []),
  ];
  const types = [...new Set([...records.map((r) => r.type), "TXT", ...(reverse ? ["PTR"] : [])])];
  // DELETE: at shutdown; a PTR of an address this instance no longer has; this owner's simple record giving way
  // to a shared name; a dead owner's records (reap).
  const deletes = records.some((r) => r.delete_on_shutdown || r.set_identifier !== undefined) || reverse || dns.reap;
  const statements: PolicyStatement[] = [];
  // ListHostedZonesByName and ListHostedZonesByVPC do not support resource-level permissions; the latter also needs
  // ec2:DescribeVpcs (Route 53 checks the VPC on the caller's behalf).
  const find = [
    ...(byName ? ["route53:ListHostedZonesByName"] : []),
    ...(reverse ? ["route53:ListHostedZonesByVPC"] : []),
  ];
  if (find.length > 0) statements.push({ Sid: "Route53FindZones", Effect: "Allow", Action: find, Resource: "*" });
  if (reverse) {
    statements.push({ Sid: "Route53FindReverseZones", Effect: "Allow", Action: ["ec2:DescribeVpcs"], Resource: "*" });
  }
  statements.push(
    {
      Sid: "Route53ReadRecords",
      Effect: "Allow",
      Action: [...(getZone ? ["route53:GetHostedZone"] : []), "route53:ListResourceRecordSets"],
      Resource: resources,
    },
    {
      Sid: "Route53ChangeRecords",
      Effect: "Allow",
      Action: ["route53:ChangeResourceRecordSets"],
      Resource: resources,
      Condition: {
        "ForAllValues:StringLike": { "route53:ChangeResourceRecordSetsNormalizedRecordNames": names },
        "ForAllValues:StringEquals": {
          "route53:ChangeResourceRecordSetsRecordTypes": types,
          "route53:ChangeResourceRecordSetsActions": ["CREATE", "UPSERT", ...(deletes ? ["DELETE"] : [])],
        },
      },
    },
  );
  if (dns.wait !== "none") {
    statements.push({
      Sid: "Route53WaitForChanges",
      Effect: "Allow",
      Action: ["route53:GetChange"],
      Resource: "arn:aws:route53:::change/*",
    });
  }
  if (dns.reap) {
    // Which owners still run; DescribeInstances has no resource-level permissions.
    statements.push({ Sid: "DnsReapOwners", Effect: "Allow", Action: ["ec2:DescribeInstances"], Resource: "*" });
  }
  return statements;
}

/** Every name under the reverse trees the record types use (PTRs and their ownership records alike). */
function reverseZonePatterns(types: string[]): string[] {
  return [...(types.includes("A") ? ["*.in-addr.arpa"] : []), ...(types.includes("AAAA") ? ["*.ip6.arpa"] : [])];
}
