// The shape of what templates see: every variable's place in the view and its kind (address, DNS name, id, free text),
// one definition for the check at validate time (analysis.ts) and for the renderer (engine.ts). Pure.

/** What a value is, which decides how it is checked where it lands. */
export type Kind = "address" | "dns" | "id" | "text";

export type Shape =
  | { type: "value"; kind: Kind }
  | { type: "object"; what: string; fields: Record<string, Shape> }
  /** Keys not known in advance (tags): any key, each value of `kind`. */
  | { type: "map"; what: string; kind: Kind }
  /** A list; `peerSet` names the set when its elements are peers. */
  | { type: "list"; what: string; of: Shape; peerSet?: string };

const value = (kind: Kind): Shape => ({ type: "value", kind });

export const instanceShape: Shape = {
  type: "object",
  what: "instance",
  fields: {
    id: value("id"),
    region: value("id"),
    az: value("id"),
    private_ipv4: value("address"),
    public_ipv4: value("address"),
    elastic_ip: value("address"),
    public_dns: value("dns"),
    mac: value("id"),
    vpc_id: value("id"),
    subnet_id: value("id"),
    hostname: value("dns"),
  },
};

const tagsShape = (what: string): Shape => ({ type: "map", what, kind: "text" });

export const peerShape: Shape = {
  type: "object",
  what: "a peer",
  fields: {
    id: value("id"),
    ip: value("address"),
    name: value("dns"),
    az: value("id"),
    tags: tagsShape("a peer's tags"),
  },
};

/** The escapers, sections of the reserved top-level `escape`: {{#escape.php}}…{{/escape.php}}. */
export const escaperNames = ["php", "shell"] as const;
export type EscaperName = (typeof escaperNames)[number];

export interface Scope {
  /** The configured peer sets, or undefined where peers are not in the view (record names, filters). */
  peerSets?: readonly string[];
  /** Whether {{#escape.…}} sections are allowed (files: yes; names and filters: no). */
  escapers: boolean;
  /** Extra top-level values some places add (check's {{staged}}). */
  extra?: Record<string, Kind>;
}

/** The view's shape in a scope. */
export function rootShape(scope: Scope): Shape & { type: "object" } {
  const fields: Record<string, Shape> = { instance: instanceShape, tags: tagsShape("this instance's tags") };
  if (scope.peerSets !== undefined) {
    fields.peers = {
      type: "object",
      what: "peers",
      fields: Object.fromEntries(
        scope.peerSets.map((s) => [s, { type: "list", what: `peers.${s}`, of: peerShape, peerSet: s }]),
      ),
    };
  }
  for (const [k, kind] of Object.entries(scope.extra ?? {})) fields[k] = value(kind);
  return { type: "object", what: "the template", fields };
}

/** What a shape offers, for messages: "id, region, az". */
export function offers(shape: Shape): string {
  switch (shape.type) {
    case "object":
      return Object.keys(shape.fields).join(", ") || "none";
    case "map":
      return "any tag key";
    case "list":
      return "0, 1, 2…";
    case "value":
      return "nothing (it is a value)";
  }
}
