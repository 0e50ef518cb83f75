// dns.reap: record sets under this instance's names whose ownership record names an instance that no longer runs
// (spot reclaim, forced termination, a stop without shutdown: no stop path ran). Only bootlace's own records, of the
// same owner_id, are candidates; EC2 says which owners still run.
import type { ResourceRecordSet } from "@aws-sdk/client-route-53";
import { labelOf, ownedBy, parseOwnership, valuesOf } from "./dns-records";
import type { Removal } from "./dns-records";
import type { ZoneRead } from "./dns-read";
import { rrsetKey } from "./dns-read";
import type { ActionContext } from "./types";

/** At most this many dead owners' record sets are deleted per run; the rest wait for the next run (and are logged). */
export const REAP_PER_RUN = 20;

/** An instance id as EC2 writes it: only such a value reaches an EC2 filter (where `*` would be a wildcard). */
const INSTANCE_ID = /^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$/;

export interface ReapCandidate {
  zoneId: string;
  label: string;
  instance: string;
  removal: Removal;
  values: string[];
}

/**
 * The record sets, among those read, whose ownership record says owner `ownerId` and an instance other than this one.
 * Record sets this run manages itself (`mine`, by key) are decided as usual instead.
 */
export function reapCandidates(read: ZoneRead, ownerId: string, selfId: string, mine: Set<string>): ReapCandidate[] {
  const out: ReapCandidate[] = [];
  for (const txt of read.rrsets.values()) {
    if (txt.Type !== "TXT") continue;
    const owned = ownedBy(txt.Name ?? "");
    if (!owned || !read.names.has(owned.name)) continue;
    const ownership = parseOwnership(txt);
    const instance = ownership?.instance;
    if (ownership?.owner !== ownerId || instance === undefined || instance === selfId) continue;
    if (!INSTANCE_ID.test(instance)) continue;
    const key = rrsetKey(owned.name, owned.type, owned.setIdentifier);
    if (mine.has(key)) continue;
    const rrset: ResourceRecordSet | undefined = read.rrsets.get(key);
    out.push({
      zoneId: read.zoneId,
      label: labelOf(owned.name, owned.type, owned.setIdentifier),
      instance,
      removal: { ...(rrset && { rrset }), ownerRrset: txt },
      values: valuesOf(rrset),
    });
  }
  return out;
}

/** The state of each instance that does not run (pending and running do); "not found" once EC2 has forgotten it. */
export async function notRunning(ctx: ActionContext, ids: string[]): Promise<Map<string, string>> {
  const unique = [...new Set(ids)];
  const states = new Map<string, string>();
  for (let i = 0; i < unique.length; i += 100) {
    const chunk = unique.slice(i, i + 100);
    let token: string | undefined;
    do {
      const out = await ctx.aws.call(
        "ec2",
        chunk.join(","),
        (sdk) =>
          new sdk.DescribeInstancesCommand({
            // A filter, not InstanceIds: an id EC2 no longer knows is simply absent instead of failing the call.
            Filters: [{ Name: "instance-id", Values: chunk }],
            ...(token !== undefined && { NextToken: token }),
          }),
      );
      for (const instance of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        if (instance.InstanceId) states.set(instance.InstanceId, instance.State?.Name ?? "unknown");
      }
      token = out.NextToken || undefined;
    } while (token !== undefined);
  }
  const gone = new Map<string, string>();
  for (const id of unique) {
    const state = states.get(id);
    if (state !== "pending" && state !== "running") gone.set(id, state ?? "not found");
  }
  return gone;
}
