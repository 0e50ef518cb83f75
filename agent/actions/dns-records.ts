// Route 53 records, decided purely: who owns a record, what to do with it, and the change batch that does it.
import type { Change as R53Change, ResourceRecordSet } from "@aws-sdk/client-route-53";
import { canonicalDnsName } from "../core/names";
import type { Change } from "./types";

/** The TXT record that says who manages name/type, beside it rather than on it (so it never clobbers an SPF TXT). */
export function ownerRecordName(name: string, type: string): string {
  return ownerName(canonicalDnsName(name), type);
}

/** The owner name for a name as given (a rendered name, or a template before rendering, as iam-policy needs). */
export function ownerName(name: string, type: string): string {
  const prefix = `_bootlace-${type.toLowerCase()}`;
  // A wildcard must stay the leftmost label, so the owner record of *.x is _bootlace-a-wildcard.x.
  return name.startsWith("*.") ? `${prefix}-wildcard.${name.slice(2)}` : `${prefix}.${name}`;
}

export interface Ownership {
  owner: string;
  instance?: string;
}

export function ownerTxtValue(owner: string, instanceId: string): string {
  return `"heritage=bootlace,bootlace/owner=${owner},bootlace/instance=${instanceId}"`;
}

/** Reads an ownership TXT rrset; undefined when it is not bootlace's. */
export function parseOwnership(rrset: ResourceRecordSet | undefined): Ownership | undefined {
  for (const record of rrset?.ResourceRecords ?? []) {
    const text = (record.Value ?? "").replace(/^"|"$/g, "");
    const fields = new Map(
      text.split(",").map((kv) => {
        const at = kv.indexOf("=");
        return [kv.slice(0, at), kv.slice(at + 1)] as const;
      }),
    );
    const owner = fields.get("bootlace/owner");
    if (fields.get("heritage") === "bootlace" && owner) {
      const instance = fields.get("bootlace/instance");
      return instance ? { owner, instance } : { owner };
    }
  }
  return undefined;
}

/** A zone id without the "/hostedzone/" prefix the API sometimes returns. */
export const zoneIdOf = (id: string): string => id.replace(/^\/hostedzone\//, "");

/** Route 53 lists names with octal escapes (\052 for '*'). */
export function decodeRoute53Name(name: string): string {
  return canonicalDnsName(name.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
}

export interface Desired {
  zoneId: string;
  zoneName: string;
  name: string;
  type: "A" | "AAAA";
  ttl: number;
  /** undefined only while planning, when the address comes from an Elastic IP not chosen yet. */
  value: string | undefined;
  deleteOnShutdown: boolean;
  takeover: boolean;
}

export interface Current {
  rrset?: ResourceRecordSet;
  ownerRrset?: ResourceRecordSet;
}

export type Decision =
  | { op: "none" }
  | { op: "create" }
  | { op: "update"; was: string; takeoverFrom?: string }
  | { op: "refuse"; reason: string };

export function valuesOf(rrset: ResourceRecordSet | undefined): string[] {
  return (rrset?.ResourceRecords ?? []).map((r) => r.Value ?? "");
}

function describeOwner(current: Current): string {
  const ownership = parseOwnership(current.ownerRrset);
  return ownership ? `bootlace owner "${ownership.owner}"` : "no bootlace ownership record";
}

/** What to do with one record: the heart of idempotency and of never overwriting someone else's record. */
export function decide(desired: Desired, current: Current, ownerId: string): Decision {
  const { rrset } = current;
  if (!rrset) return { op: "create" };
  const label = `${desired.name} ${desired.type}`;
  if (rrset.SetIdentifier !== undefined || rrset.AliasTarget !== undefined) {
    return {
      op: "refuse",
      reason: `${label} exists as ${rrset.AliasTarget ? "an alias" : `a routing-policy record (set ${rrset.SetIdentifier})`}; bootlace manages simple records only, so it is left alone`,
    };
  }
  const values = valuesOf(rrset);
  const was = `${values.join(",")} ttl ${rrset.TTL ?? "?"}`;
  const ownership = parseOwnership(current.ownerRrset);
  const ours = ownership?.owner === ownerId;
  if (!ours && !desired.takeover) {
    return {
      op: "refuse",
      reason: `${label} exists (${values.join(",")}) and is not bootlace's (${describeOwner(current)}); left alone — set takeover: true to take it over`,
    };
  }
  const same = values.length === 1 && values[0] === desired.value && rrset.TTL === desired.ttl;
  if (same && ours) return { op: "none" };
  return ours ? { op: "update", was } : { op: "update", was, takeoverFrom: describeOwner(current) };
}

/** The changes for one record, in one batch with its ownership record so both apply or neither does. */
export function changesFor(
  d: Desired,
  decision: Decision,
  current: Current,
  owner: string,
  instanceId: string,
): R53Change[] {
  if ((decision.op !== "create" && decision.op !== "update") || d.value === undefined) return [];
  const record: ResourceRecordSet = { Name: d.name, Type: d.type, TTL: d.ttl, ResourceRecords: [{ Value: d.value }] };
  const txt: ResourceRecordSet = {
    Name: ownerRecordName(d.name, d.type),
    Type: "TXT",
    TTL: d.ttl,
    ResourceRecords: [{ Value: ownerTxtValue(owner, instanceId) }],
  };
  return [
    // CREATE, not UPSERT, for a record that was absent: if someone creates it meanwhile, Route 53 refuses the batch.
    { Action: decision.op === "create" ? "CREATE" : "UPSERT", ResourceRecordSet: record },
    { Action: current.ownerRrset ? "UPSERT" : "CREATE", ResourceRecordSet: txt },
  ];
}

export function describeChange(d: Desired, decision: Decision): Change | undefined {
  const target = `${d.name} ${d.type}`;
  const value = d.value ?? "(the Elastic IP, once claimed)";
  switch (decision.op) {
    case "create":
      return { kind: "create", target, detail: `${value} ttl ${d.ttl}` };
    case "update":
      return {
        kind: decision.takeoverFrom ? "take over" : "update",
        target,
        detail: `${value} ttl ${d.ttl} (was ${decision.was}${decision.takeoverFrom ? `, ${decision.takeoverFrom}` : ""})`,
      };
    default:
      return undefined;
  }
}
