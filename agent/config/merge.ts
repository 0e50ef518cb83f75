// Configuration trees that remember where every value came from, and the key-by-key merge of them.
import type { SourceRef } from "../core/errors";

/**
 * A configuration value with its provenance. Maps keep their entries as trees too, so a merge can keep, per key, the
 * source and line of the value that won; lists and scalars are leaves for merging (they replace whole) but lists keep
 * their items' lines so an error inside an item still points at the item.
 */
export type Tracked =
  | { kind: "map"; where: SourceRef; entries: Map<string, Tracked> }
  | { kind: "seq"; where: SourceRef; items: Tracked[] }
  | { kind: "scalar"; where: SourceRef; value: unknown };

export type PathSegment = string | number;

export function emptyMap(where: SourceRef): Tracked {
  return { kind: "map", where, entries: new Map() };
}

/**
 * `over` merged onto `under`: maps merge key by key (recursively), anything else replaces whole, and a null value
 * removes the key, so a later source can switch off a section an earlier one turned on (`load_balancer: null`).
 */
export function merge(under: Tracked | undefined, over: Tracked): Tracked {
  if (under?.kind !== "map" || over.kind !== "map") return withoutNulls(over);
  const entries = new Map(under.entries);
  for (const [key, value] of over.entries) {
    if (isNull(value)) entries.delete(key);
    else entries.set(key, merge(entries.get(key), value));
  }
  // The later source is blamed for rules that span keys ("set exactly one of zone or zone_id"): it made the mix.
  return { kind: "map", where: over.where, entries };
}

function isNull(t: Tracked): boolean {
  return t.kind === "scalar" && (t.value === null || t.value === undefined);
}

function withoutNulls(t: Tracked): Tracked {
  if (t.kind !== "map") return t;
  const entries = new Map([...t.entries].filter(([, v]) => !isNull(v)).map(([k, v]) => [k, withoutNulls(v)]));
  return { kind: "map", where: t.where, entries };
}

/** The plain value (what the schema parses). */
export function toPlain(t: Tracked): unknown {
  switch (t.kind) {
    case "scalar":
      return t.value;
    case "seq":
      return t.items.map(toPlain);
    case "map":
      return Object.fromEntries([...t.entries].map(([k, v]) => [k, toPlain(v)]));
  }
}

/** The node at path, if every segment exists. */
export function child(t: Tracked | undefined, path: readonly PathSegment[]): Tracked | undefined {
  let node = t;
  for (const segment of path) {
    if (node?.kind === "map") node = node.entries.get(String(segment));
    else if (node?.kind === "seq" && typeof segment === "number") node = node.items[segment];
    else return undefined;
  }
  return node;
}

/** Where the value at path came from: the deepest node along the path that exists (a missing key → its parent). */
export function locate(t: Tracked, path: readonly PathSegment[]): SourceRef {
  let node: Tracked = t;
  for (const segment of path) {
    const next = child(node, [segment]);
    if (!next) break;
    node = next;
  }
  return node.where;
}

export class PathError extends Error {}

/**
 * Sets the value at path inside the tree (a `--set` or `BOOTLACE_SET_`): missing maps are created; a numeric segment
 * indexes a list (one past the end appends), so `dns.records.0.ttl` edits the first record rather than replacing the
 * list; an empty (null) value removes the key, as in a merge. Returns the new tree; throws PathError when the path
 * cannot exist.
 */
export function setPath(t: Tracked, path: readonly string[], value: Tracked): Tracked {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (head === "") throw new PathError("empty key in path");
  if (t.kind === "seq") {
    if (!/^\d+$/.test(head)) throw new PathError(`${JSON.stringify(head)} is not an index: this is a list`);
    const index = Number(head);
    if (index > t.items.length) {
      throw new PathError(`index ${index} is past the end of the list (${t.items.length} item(s))`);
    }
    const items = [...t.items];
    if (rest.length === 0 && isNull(value)) items.splice(index, 1);
    else items[index] = setPath(items[index] ?? fresh(rest, value.where), rest, value);
    return { kind: "seq", where: t.where, items };
  }
  if (t.kind === "map") {
    const entries = new Map(t.entries);
    if (rest.length === 0 && isNull(value)) entries.delete(head);
    else entries.set(head, setPath(entries.get(head) ?? fresh(rest, value.where), rest, value));
    return { kind: "map", where: t.where, entries };
  }
  throw new PathError(
    `cannot set ${JSON.stringify(head)} inside a ${typeof t.value === "string" ? "string" : "value"}`,
  );
}

/** An empty container for the next path segment to land in: a list when it is an index. */
function fresh(rest: readonly string[], where: SourceRef): Tracked {
  const next = rest[0];
  if (next === undefined) return { kind: "scalar", where, value: undefined };
  return /^\d+$/.test(next) ? { kind: "seq", where, items: [] } : emptyMap(where);
}
