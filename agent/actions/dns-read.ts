// Reading a zone exactly: for each name bootlace manages, its record sets (every set identifier) and the ownership
// records under it, in as few ListResourceRecordSets pages as the listing's order allows (usually one per name).
import type { ResourceRecordSet } from "@aws-sdk/client-route-53";
import { canonicalDnsName } from "../core/names";
import { decodeRoute53Name, listingKey, ownerName } from "./dns-records";
import type { RecordType } from "./dns-records";
import type { ActionContext } from "./types";

/** Route 53's largest page: a name many instances share holds two record sets per instance. */
const PAGE = 300;
/** A listing that has not ended after this many pages is not what bootlace reads for: stop rather than loop. */
const MAX_PAGES = 50;

/** One run of the listing that must be read whole: the record sets of one name, or everything under a name. */
interface Range {
  name: string;
  key: string;
  subtree: boolean;
}

/** The key of a record set in a read: name, type and set identifier. */
export function rrsetKey(name: string, type: string, setIdentifier?: string): string {
  return `${canonicalDnsName(name)}|${type}|${setIdentifier ?? ""}`;
}

export const keyOfRrset = (r: ResourceRecordSet): string =>
  rrsetKey(decodeRoute53Name(r.Name ?? ""), r.Type ?? "", r.SetIdentifier);

/** What one zone holds under the names read: record sets by key. */
export class ZoneRead {
  constructor(
    readonly zoneId: string,
    readonly rrsets: Map<string, ResourceRecordSet>,
    /** The names whose record sets and ownership records were read whole. */
    readonly names: Set<string>,
  ) {}

  get(name: string, type: string, setIdentifier?: string): ResourceRecordSet | undefined {
    return this.rrsets.get(rrsetKey(name, type, setIdentifier));
  }

  /** Every record set of a name and type, whatever its set identifier. */
  all(name: string, type: string): ResourceRecordSet[] {
    const n = canonicalDnsName(name);
    return [...this.rrsets.values()].filter((r) => decodeRoute53Name(r.Name ?? "") === n && r.Type === type);
  }
}

/** The names to read in one zone, each with the record types whose ownership records matter. */
export type NameSets = Map<string, Set<RecordType>>;

/**
 * Reads each name's record sets and the ownership subtrees beside them. The listing is sorted (labels reversed), so
 * `_bootlace-a.NAME` and `SET._bootlace-a.NAME` follow NAME closely: one page usually holds a whole name set, and a
 * page goes on to the next page only while it is still inside what is needed, else the next call starts where the
 * next range starts.
 */
export async function readNameSets(ctx: ActionContext, zoneId: string, sets: NameSets): Promise<ZoneRead> {
  const ranges: Range[] = [];
  for (const [name, types] of sets) {
    ranges.push({ name, key: listingKey(name), subtree: false });
    for (const type of types) {
      const base = canonicalDnsName(ownerName(name, type));
      ranges.push({ name: base, key: listingKey(base), subtree: true });
    }
  }
  const pending = dedupe(ranges).sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const rrsets = new Map<string, ResourceRecordSet>();
  let pages = 0;
  while (pending.length > 0) {
    const scanKey = pending[0]!.key;
    let position: { name: string; type?: string; id?: string } = { name: pending[0]!.name };
    for (;;) {
      if (++pages > MAX_PAGES) {
        throw new Error(
          `ListResourceRecordSets ${zoneId}: more than ${MAX_PAGES} pages for ${[...sets.keys()].join(", ")}`,
        );
      }
      const start = position;
      const out = await ctx.aws.call(
        "route53",
        `${zoneId} (${start.name})`,
        (sdk) =>
          new sdk.ListResourceRecordSetsCommand({
            HostedZoneId: zoneId,
            StartRecordName: start.name,
            ...(start.type !== undefined && { StartRecordType: start.type as "A" }),
            ...(start.id !== undefined && { StartRecordIdentifier: start.id }),
            MaxItems: PAGE,
          }),
      );
      for (const r of out.ResourceRecordSets ?? []) {
        rrsets.set(rrsetKey(decodeRoute53Name(r.Name ?? ""), r.Type ?? "", r.SetIdentifier), r);
      }
      const next = out.IsTruncated && out.NextRecordName ? out.NextRecordName : undefined;
      const nextKey = next === undefined ? undefined : listingKey(next);
      for (let i = pending.length - 1; i >= 0; i--) {
        const r = pending[i]!;
        if (r.key >= scanKey && (nextKey === undefined || isPast(r, nextKey))) pending.splice(i, 1);
      }
      if (nextKey === undefined || pending.length === 0) break;
      // Page on only while the next position is inside a range still needed; else jump to the next range.
      if (!pending.some((r) => inRange(r, nextKey))) break;
      position = {
        name: next!,
        ...(out.NextRecordType !== undefined && { type: out.NextRecordType }),
        ...(out.NextRecordIdentifier !== undefined && { id: out.NextRecordIdentifier }),
      };
    }
  }
  return new ZoneRead(zoneId, rrsets, new Set([...sets.keys()].map(canonicalDnsName)));
}

function inRange(r: Range, key: string): boolean {
  return r.subtree ? key.startsWith(r.key) : key === r.key;
}

/** Whether the listing's next position lies after the whole range (so the range was read). */
function isPast(r: Range, key: string): boolean {
  return key > r.key && !inRange(r, key);
}

function dedupe(ranges: Range[]): Range[] {
  const byKey = new Map<string, Range>();
  for (const r of ranges) {
    const seen = byKey.get(r.key);
    if (!seen || (r.subtree && !seen.subtree)) byKey.set(r.key, r);
  }
  // A range inside a subtree range is read with it.
  const all = [...byKey.values()];
  return all.filter((r) => !all.some((o) => o !== r && o.subtree && r.key.startsWith(o.key) && r.key !== o.key));
}
