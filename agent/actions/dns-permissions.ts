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
  const byName = records.some((r) => r.zone_id === undefined);
  const zones = [
    ...new Set(
      records.map((r) => `arn:aws:route53:::hostedzone/${r.zone_id !== undefined ? zoneIdOf(r.zone_id) : "*"}`),
    ),
  ];
  const resources = zones.includes("arn:aws:route53:::hostedzone/*") ? ["arn:aws:route53:::hostedzone/*"] : zones;
  // GetHostedZone: a zone given by id, or one of several private zones sharing a name.
  const getZone = records.some((r) => r.zone_id !== undefined || r.private === true);
  const names = [...new Set(records.flatMap((r) => [r.name, ownerName(r.name, r.type)].map(normalizedNamePattern)))];
  const statements: PolicyStatement[] = [];
  // ListHostedZonesByName does not support resource-level permissions.
  if (byName)
    statements.push({
      Sid: "Route53FindZones",
      Effect: "Allow",
      Action: ["route53:ListHostedZonesByName"],
      Resource: "*",
    });
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
          "route53:ChangeResourceRecordSetsRecordTypes": [...new Set([...records.map((r) => r.type), "TXT"])],
          "route53:ChangeResourceRecordSetsActions": [
            "CREATE",
            "UPSERT",
            ...(records.some((r) => r.delete_on_shutdown) ? ["DELETE"] : []),
          ],
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
  return statements;
}
