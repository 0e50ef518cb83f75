// What a value must be before it lands in a file or an API call: addresses parse as addresses, names are DNS names.
import { isIPv4, isIPv6 } from "node:net";

export { isIPv4, isIPv6 };

const label = /^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$/;

/** A DNS name of letters, digits, '-' and '_' (a leading '*' label allowed); a trailing dot is accepted. */
export function isDnsName(name: string): boolean {
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > 253) return false;
  return bare.split(".").every((l, i) => label.test(l) || (i === 0 && l === "*"));
}

/** Lower-cased, with the trailing dot Route 53 uses. */
export function canonicalDnsName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower : `${lower}.`;
}

/** True when name equals zone or lies inside it (both canonical or not; compared canonically). */
export function isInZone(name: string, zone: string): boolean {
  const n = canonicalDnsName(name);
  const z = canonicalDnsName(zone);
  return n === z || n.endsWith(`.${z}`);
}
