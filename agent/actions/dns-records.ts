// Route 53 records, decided purely: who owns a record, what to do with it, and the change batch that does it.
import type { Change as R53Change, ResourceRecordSet } from "@aws-sdk/client-route-53";
import { canonicalDnsName, isIPv4, isIPv6 } from "../core/names";
import type { Change } from "./types";

export type RecordType = "A" | "AAAA" | "PTR";

/** A routing-policy record's own fields: one record set per instance under a shared name. */
export interface Routing {
  setIdentifier: string;
  multivalue?: true;
  weight?: number;
  failover?: "PRIMARY" | "SECONDARY";
  healthCheckId?: string;
}

/**
 * The TXT record that says who manages name/type(/set), beside it rather than on it (so it never clobbers an SPF
 * TXT): `_bootlace-a.NAME`, and for a routing-policy record `SET._bootlace-a.NAME`, one per set identifier, so that
 * instances sharing a name never write each other's ownership. All of them sit under NAME, where one listing finds them.
 */
export function ownerRecordName(name: string, type: string, setIdentifier?: string): string {
  const base = ownerName(canonicalDnsName(name), type);
  return setIdentifier === undefined ? base : `${setIdentifier}.${base}`;
}

/** The owner name for a name as given (a rendered name, or a template before rendering, as iam-policy needs). */
export function ownerName(name: string, type: string): string {
  const prefix = `_bootlace-${type.toLowerCase()}`;
  // A wildcard must stay the leftmost label, so the owner record of *.x is _bootlace-a-wildcard.x.
  return name.startsWith("*.") ? `${prefix}-wildcard.${name.slice(2)}` : `${prefix}.${name}`;
}

/** Which record an ownership record's name stands for; undefined for any other name. */
export function ownedBy(ownerRecord: string): { name: string; type: RecordType; setIdentifier?: string } | undefined {
  const m = /^(?:([a-z0-9_-]{1,63})\.)?_bootlace-(a|aaaa|ptr)(-wildcard)?\.(.+)$/.exec(canonicalDnsName(ownerRecord));
  if (!m) return undefined;
  const [, set, type, wildcard, rest] = m;
  const name = wildcard ? `*.${rest!}` : rest!;
  return { name, type: type!.toUpperCase() as RecordType, ...(set !== undefined && { setIdentifier: set }) };
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
    const owner = fields.get("heritage") === "bootlace" ? fields.get("bootlace/owner") : undefined;
    if (owner) {
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

/**
 * Where a name sorts in ListResourceRecordSets: labels reversed, with the trailing dot, compared as ASCII
 * ("com.example.www."). A name's subtree is then one run of the listing: every key that starts with its key.
 */
export function listingKey(name: string): string {
  const bare = decodeRoute53Name(name).slice(0, -1);
  return bare === "" ? "." : `${bare.split(".").reverse().join(".")}.`;
}

/** The PTR name of an address: d.c.b.a.in-addr.arpa., or the 32 nibbles of an IPv6 address reversed under ip6.arpa. */
export function reverseName(ip: string): string {
  if (isIPv4(ip)) return `${ip.split(".").reverse().join(".")}.in-addr.arpa.`;
  if (isIPv6(ip)) return `${[...expandIPv6(ip)].reverse().join(".")}.ip6.arpa.`;
  throw new Error(`not an IP address: ${ip}`);
}

/** The 32 hex digits of an IPv6 address (an embedded IPv4 tail included), lower case. */
export function expandIPv6(ip: string): string {
  let text = ip.toLowerCase();
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)?.[1];
  if (v4) {
    const [a, b, c, d] = v4.split(".").map(Number) as [number, number, number, number];
    text = text.slice(0, -v4.length) + `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = "", tail] = text.split("::");
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const middle = tail === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...middle, ...right].map((g) => g.padStart(4, "0")).join("");
}

/** A value as Route 53 compares it: an IPv6 address in full, a name canonical (PTR). */
export function normalValue(type: string, value: string): string {
  if (type === "AAAA" && isIPv6(value)) return expandIPv6(value);
  if (type === "PTR") return canonicalDnsName(value);
  return value;
}

export interface Desired {
  zoneId: string;
  zoneName: string;
  name: string;
  type: RecordType;
  ttl: number;
  /** undefined only while planning, when the address comes from an Elastic IP not chosen yet. A PTR may hold several names. */
  values: string[] | undefined;
  routing?: Routing;
  deleteOnShutdown: boolean;
  takeover: boolean;
}

/** What the name set's listing holds for one desired record. */
export interface Current {
  rrset?: ResourceRecordSet;
  ownerRrset?: ResourceRecordSet;
  /** The other record sets of the same name and type (other set identifiers, or a simple one). */
  siblings: ResourceRecordSet[];
  /** A CNAME at the name (nothing else may share a name with it). */
  cname?: ResourceRecordSet;
  /** Ownership records of the siblings, by set identifier ("" for a simple record). */
  siblingOwners: Map<string, ResourceRecordSet>;
}

/** A record set bootlace deletes exactly as it was read, with its ownership record. */
export interface Removal {
  rrset?: ResourceRecordSet;
  ownerRrset?: ResourceRecordSet;
}

export type Decision =
  | { op: "none" }
  | { op: "create"; replaces?: Removal[] }
  | { op: "update"; was: string; takeoverFrom?: string }
  | { op: "refuse"; reason: string };

export function valuesOf(rrset: ResourceRecordSet | undefined): string[] {
  return (rrset?.ResourceRecords ?? []).map((r) => r.Value ?? "");
}

/** "api.example.internal. A" or "api.example.internal. A (set i-0abc)". */
export function labelOf(name: string, type: string, setIdentifier?: string): string {
  return setIdentifier === undefined ? `${name} ${type}` : `${name} ${type} (set ${setIdentifier})`;
}

export function policyOf(rrset: ResourceRecordSet): string {
  if (rrset.MultiValueAnswer) return "multivalue";
  if (rrset.Weight !== undefined) return "weighted";
  if (rrset.Failover !== undefined) return "failover";
  if (rrset.SetIdentifier !== undefined) return "routing-policy";
  return "simple";
}

function desiredPolicy(d: Desired): string {
  if (!d.routing) return "simple";
  if (d.routing.multivalue) return "multivalue";
  if (d.routing.weight !== undefined) return "weighted";
  return "failover";
}

function describeOwner(ownerRrset: ResourceRecordSet | undefined): string {
  const ownership = parseOwnership(ownerRrset);
  return ownership ? `bootlace owner "${ownership.owner}"` : "no bootlace ownership record";
}

export function sameValues(type: string, a: string[], b: string[]): boolean {
  const norm = (list: string[]) => list.map((v) => normalValue(type, v)).sort();
  const [x, y] = [norm(a), norm(b)];
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

function sameRouting(d: Desired, rrset: ResourceRecordSet): boolean {
  const r = d.routing;
  return (
    (rrset.SetIdentifier ?? undefined) === r?.setIdentifier &&
    (rrset.MultiValueAnswer === true) === (r?.multivalue === true) &&
    rrset.Weight === r?.weight &&
    rrset.Failover === r?.failover &&
    rrset.HealthCheckId === r?.healthCheckId
  );
}

/** Why a record cannot join the record sets already at its name and type (Route 53 would refuse the batch). */
function conflict(d: Desired, current: Current, ownerId: string): { reason?: string; replaces?: Removal[] } {
  const label = labelOf(d.name, d.type, d.routing?.setIdentifier);
  if (current.cname) return { reason: `${label}: ${d.name} is a CNAME; nothing else may share its name` };
  if (current.siblings.length === 0) return {};
  const policy = desiredPolicy(d);
  if (policy === "simple") {
    const sets = current.siblings.map((s) => s.SetIdentifier ?? "").join(", ");
    return {
      reason: `${label} exists as ${policyOf(current.siblings[0]!)} records (sets ${sets}); bootlace manages a simple record there only once they are gone, so it is left alone`,
    };
  }
  const simple = current.siblings.find((s) => s.SetIdentifier === undefined);
  if (simple) {
    // This instance's own simple record (from before the name was shared) gives way in the same batch.
    const owner = current.siblingOwners.get("");
    if (parseOwnership(owner)?.owner === ownerId && simple.AliasTarget === undefined) {
      return { replaces: [{ rrset: simple, ...(owner && { ownerRrset: owner }) }] };
    }
    return {
      reason: `${label}: ${d.name} ${d.type} exists as a simple record (${valuesOf(simple).join(",")}, ${describeOwner(owner)}); a ${policy} record cannot share its name and type, so it is left alone`,
    };
  }
  const other = current.siblings.find((s) => policyOf(s) !== policy);
  if (other) {
    return {
      reason: `${label}: ${d.name} ${d.type} has ${policyOf(other)} records (set ${other.SetIdentifier}); a ${policy} record cannot join them`,
    };
  }
  const failover = d.routing?.failover;
  const taken = failover && current.siblings.find((s) => s.Failover === failover);
  if (taken) {
    return {
      reason: `${label}: ${d.name} ${d.type} already has its ${failover} failover record (set ${taken.SetIdentifier}); there is one of each`,
    };
  }
  return {};
}

/** What to do with one record: the heart of idempotency and of never overwriting someone else's record. */
export function decide(desired: Desired, current: Current, ownerId: string): Decision {
  const { rrset } = current;
  const label = labelOf(desired.name, desired.type, desired.routing?.setIdentifier);
  if (!rrset) {
    const c = conflict(desired, current, ownerId);
    if (c.reason) return { op: "refuse", reason: c.reason };
    return c.replaces ? { op: "create", replaces: c.replaces } : { op: "create" };
  }
  if (rrset.AliasTarget !== undefined) {
    return {
      op: "refuse",
      reason: `${label} exists as an alias; bootlace does not manage aliases, so it is left alone`,
    };
  }
  const values = valuesOf(rrset);
  const was = `${values.join(",")} ttl ${rrset.TTL ?? "?"}`;
  const ours = parseOwnership(current.ownerRrset)?.owner === ownerId;
  if (!ours && !desired.takeover) {
    return {
      op: "refuse",
      reason: `${label} exists (${values.join(",")}) and is not bootlace's (${describeOwner(current.ownerRrset)}); left alone${desired.type === "PTR" ? "" : " — set takeover: true to take it over"}`,
    };
  }
  const same =
    desired.values !== undefined &&
    sameValues(desired.type, values, desired.values) &&
    rrset.TTL === desired.ttl &&
    sameRouting(desired, rrset);
  if (same && ours) return { op: "none" };
  return ours ? { op: "update", was } : { op: "update", was, takeoverFrom: describeOwner(current.ownerRrset) };
}

/** The record set bootlace writes for a desired record. */
export function rrsetFor(d: Desired): ResourceRecordSet {
  const r = d.routing;
  return {
    Name: d.name,
    Type: d.type,
    TTL: d.ttl,
    ResourceRecords: (d.values ?? []).map((Value) => ({ Value })),
    ...(r && { SetIdentifier: r.setIdentifier }),
    ...(r?.multivalue && { MultiValueAnswer: true }),
    ...(r?.weight !== undefined && { Weight: r.weight }),
    ...(r?.failover !== undefined && { Failover: r.failover }),
    ...(r?.healthCheckId !== undefined && { HealthCheckId: r.healthCheckId }),
  };
}

/** Exact DELETEs of what was read: if either changed since, Route 53 refuses the batch and nothing is lost. */
export function deletesFor(removal: Removal): R53Change[] {
  return [removal.rrset, removal.ownerRrset].flatMap((rrset) =>
    rrset ? [{ Action: "DELETE" as const, ResourceRecordSet: rrset }] : [],
  );
}

/** The changes for one record, in one batch with its ownership record so both apply or neither does. */
export function changesFor(
  d: Desired,
  decision: Decision,
  current: Current,
  owner: string,
  instanceId: string,
): R53Change[] {
  if ((decision.op !== "create" && decision.op !== "update") || d.values === undefined) return [];
  const txt: ResourceRecordSet = {
    Name: ownerRecordName(d.name, d.type, d.routing?.setIdentifier),
    Type: "TXT",
    TTL: d.ttl,
    ResourceRecords: [{ Value: ownerTxtValue(owner, instanceId) }],
  };
  return [
    ...(decision.op === "create" ? (decision.replaces ?? []).flatMap(deletesFor) : []),
    // CREATE, not UPSERT, for a record that was absent: if someone creates it meanwhile, Route 53 refuses the batch.
    { Action: decision.op === "create" ? "CREATE" : "UPSERT", ResourceRecordSet: rrsetFor(d) },
    { Action: current.ownerRrset ? "UPSERT" : "CREATE", ResourceRecordSet: txt },
  ];
}

export function describeChange(d: Desired, decision: Decision): Change | undefined {
  const target = labelOf(d.name, d.type, d.routing?.setIdentifier);
  const value =
    d.values?.join(",") ??
    (d.type === "PTR" ? "(the names of the Elastic IP, once claimed)" : "(the Elastic IP, once claimed)");
  const routing = d.routing
    ? d.routing.multivalue
      ? " multivalue"
      : d.routing.weight !== undefined
        ? ` weight ${d.routing.weight}`
        : ` failover ${d.routing.failover ?? ""}`
    : "";
  switch (decision.op) {
    case "create":
      return {
        kind: "create",
        target,
        detail: `${value} ttl ${d.ttl}${routing}${decision.replaces?.length ? " (replacing this owner's simple record)" : ""}`,
      };
    case "update":
      return {
        kind: decision.takeoverFrom ? "take over" : "update",
        target,
        detail: `${value} ttl ${d.ttl}${routing} (was ${decision.was}${decision.takeoverFrom ? `, ${decision.takeoverFrom}` : ""})`,
      };
    default:
      return undefined;
  }
}
