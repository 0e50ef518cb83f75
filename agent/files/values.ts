// What lands in a file must be what it claims to be: which peers (and own tags) are safe to write, given what the
// file's templates use (template/analysis.ts), and the escapes for the places where a rendered value is not plain text
// (regex replacements, shell commands). Pure.
import type { FieldUse } from "../template/analysis";
import type { PeerView } from "../template/render";
import { isDnsName, isIPv4, isSafeFileValue } from "../core/names";

/** Why a value may not land on a line of a config file, or undefined when it may. */
export function unsafeReason(value: string): string | undefined {
  if (isSafeFileValue(value)) return undefined;
  if (/[\r\n]/.test(value)) return "has a line break";
  if (value.includes("#")) return "has a '#'";
  // eslint-disable-next-line no-control-regex
  const bad = /[\u0000-\u001f\u007f]/.exec(value)?.[0] ?? "";
  return `has the control character U+${bad.charCodeAt(0).toString(16).padStart(4, "0").toUpperCase()}`;
}

function usedTagKeys(tags: Record<string, string>, use: FieldUse): string[] {
  return use.allTags ? Object.keys(tags) : [...use.tags].filter((k) => k in tags);
}

function tagProblems(tags: Record<string, string>, use: FieldUse): string[] {
  return usedTagKeys(tags, use).flatMap((key) => {
    const reason = unsafeReason(tags[key]!);
    return reason ? [`tag ${key} ${JSON.stringify(tags[key])} ${reason}`] : [];
  });
}

/** Why this peer's values must not land in a file using `use`; empty when they may. */
export function peerProblems(peer: PeerView, use: FieldUse): string[] {
  const problems: string[] = [];
  if (use.fields.has("ip") && !isIPv4(peer.ip)) problems.push(`address ${JSON.stringify(peer.ip)} is not IPv4`);
  if (use.fields.has("id") && !/^i-[0-9a-f]{8,17}$/.test(peer.id)) problems.push(`id ${JSON.stringify(peer.id)}`);
  if (use.fields.has("az") && !/^[a-z0-9-]+$/.test(peer.az)) problems.push(`zone ${JSON.stringify(peer.az)}`);
  if (use.fields.has("name") && !isDnsName(peer.name)) {
    const from = peer.tags.Name !== undefined ? "tag Name" : "name";
    problems.push(`${from} ${JSON.stringify(peer.name)} is not a DNS name`);
  }
  problems.push(...tagProblems(peer.tags, use));
  return problems;
}

export interface ExcludedPeer {
  set: string;
  peer: PeerView;
  problems: string[];
}

/** The sets with every unsafe peer left out, and who was left out and why. */
export function safePeers(
  sets: Record<string, PeerView[]>,
  use: FieldUse,
): { sets: Record<string, PeerView[]>; excluded: ExcludedPeer[] } {
  const excluded: ExcludedPeer[] = [];
  const safe: Record<string, PeerView[]> = {};
  for (const [set, peers] of Object.entries(sets)) {
    safe[set] = peers.filter((peer) => {
      const problems = peerProblems(peer, use);
      if (problems.length > 0) excluded.push({ set, peer, problems });
      return problems.length === 0;
    });
  }
  return { sets: safe, excluded };
}

/** Problems with the instance's own tags that a file would use. */
export function ownTagProblems(tags: Record<string, string>, use: FieldUse): string[] {
  return tagProblems(tags, use);
}

/** For `check`: every value is one shell word, so {{staged}} or an address can never become a second command. */
export function shellQuote(value: unknown): string {
  return `'${String(value).replace(/'/g, `'\\''`)}'`;
}

/** For replace's `with`: a value is inserted literally, never read as $1 or $&. */
export function literalReplacement(value: unknown): string {
  return String(value).replace(/\$/g, "$$$$");
}
