// Route 53 as AWS behaves and moto 5.2.1 does not: change batches validated whole against the zone's current records
// (routing policies included) and applied atomically, without moto's collateral deletions; ListResourceRecordSets in
// AWS's order, paged by name, type and set identifier; and changes that stay PENDING for a while under their own ids
// (reference, sections 4 and 6).
import { randomBytes, randomUUID } from "node:crypto";
import { XMLParser } from "fast-xml-parser";
import { awsError, xmlEscape, type Interceptor, type WireRequest, type WireResponse } from "./aws-wire";

type Forward = (req: WireRequest) => Promise<WireResponse>;

/** A ResourceRecordSet element as fast-xml-parser gives it: strings, nested objects, ResourceRecord always a list. */
interface XmlRrset {
  Name?: string;
  Type?: string;
  SetIdentifier?: string;
  TTL?: string;
  ResourceRecords?: { ResourceRecord?: { Value?: string }[] };
  AliasTarget?: { HostedZoneId?: string; DNSName?: string; EvaluateTargetHealth?: string };
  MultiValueAnswer?: string;
  Weight?: string;
  Failover?: string;
  [other: string]: unknown;
}

interface Rrset {
  name: string;
  type: string;
  setId: string | undefined;
  /** Everything DELETE must match, in a canonical form. */
  content: string;
  /** simple, weighted, multivalue, failover, or other (latency, geolocation...). */
  policy: string;
  failover?: string;
}

/** A record set as moto lists it: parsed, and its <ResourceRecordSet> element as moto wrote it. */
interface Listed {
  rr: Rrset;
  xml: string;
}

const API = "/2013-04-01";
const NS = "https://route53.amazonaws.com/doc/2013-04-01/";
const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  // ResourceRecordSet is a list only inside ResourceRecordSets; inside a Change it is one element.
  isArray: (tag, jPath) =>
    tag === "Change" || tag === "ResourceRecord" || String(jPath).endsWith("ResourceRecordSets.ResourceRecordSet"),
});

export class Route53Fidelity {
  pendingMs: number;
  private readonly now: () => number;
  /** Change id (without "/change/") → when it was submitted, by `now`. */
  private readonly changes = new Map<string, number>();
  /** One batch at a time per zone, so validation and application cannot interleave with another batch. */
  private readonly zoneQueues = new Map<string, Promise<unknown>>();

  constructor(o: { pendingMs: number; now: () => number }) {
    this.pendingMs = o.pendingMs;
    this.now = o.now;
  }

  interceptors(): Record<string, Interceptor> {
    const tracked: Interceptor = async (req, forward) => this.trackChange(await forward(req));
    return {
      ChangeResourceRecordSets: (req, forward) => this.serialised(zoneIdOf(req.path), () => this.change(req, forward)),
      ListResourceRecordSets: (req, forward) => listPage(req, forward),
      GetChange: (req) => Promise.resolve(this.getChange(req)),
      CreateHostedZone: tracked,
      DeleteHostedZone: tracked,
      AssociateVPCWithHostedZone: tracked,
      DisassociateVPCFromHostedZone: tracked,
    };
  }

  private async serialised<T>(zoneId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.zoneQueues.get(zoneId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    this.zoneQueues.set(
      zoneId,
      next.catch(() => undefined),
    );
    return next;
  }

  private async change(req: WireRequest, forward: Forward): Promise<WireResponse> {
    const zoneId = zoneIdOf(req.path);
    let changes: { Action?: string; ResourceRecordSet?: XmlRrset }[];
    try {
      const doc = parser.parse(req.body.toString("utf8")) as {
        ChangeResourceRecordSetsRequest?: { ChangeBatch?: { Changes?: { Change?: typeof changes } } };
      };
      changes = doc.ChangeResourceRecordSetsRequest?.ChangeBatch?.Changes?.Change ?? [];
    } catch {
      return awsError("route53", 400, "MalformedInput", "Could not parse the request body as XML");
    }
    if (changes.length === 0) return awsError("route53", 400, "InvalidInput", "Invalid request: no changes");

    const zone = await forward(read(req, `${API}/hostedzone/${zoneId}`));
    if (zone.status !== 200) return zone;
    const zoneName = normaliseName(
      (parser.parse(zone.body.toString()) as { GetHostedZoneResponse?: { HostedZone?: { Name?: string } } })
        .GetHostedZoneResponse?.HostedZone?.Name ?? "",
    );
    const listed = await listRrsets(req, zoneId, forward);
    if (!Array.isArray(listed)) return listed;
    const current = listed.map((l) => l.rr);

    const problems = validateBatch(changes, current, zoneName);
    if (typeof problems === "string") return awsError("route53", 400, "InvalidInput", problems);
    if (problems.length > 0) return awsError("route53", 400, "InvalidChangeBatch", `[${problems.join(", ")}]`);

    // moto compares names case-sensitively and would reject part of a batch AWS accepts; AWS stores them lower-cased.
    const body = req.body
      .toString("utf8")
      .replace(/<Name>([^<]*)<\/Name>/g, (_, n: string) => `<Name>${n.toLowerCase()}</Name>`);
    const answer = await forward({ ...req, body: Buffer.from(body, "utf8") });
    if (answer.status === 200) {
      const touched = new Set(changes.map((c) => keyOf(toRrset(c.ResourceRecordSet ?? {}))));
      const restored = await this.restore(req, zoneId, forward, listed, touched);
      if (restored) return restored;
    }
    return this.trackChange(answer);
  }

  /**
   * moto's DELETE with a SetIdentifier removes every record set in the zone that carries that identifier (another
   * name's, another type's): put back those the batch did not name, as they were (UPSERT: moto refuses a CREATE
   * identical to one in its change history). Returns an error answer if it could not.
   */
  private async restore(
    req: WireRequest,
    zoneId: string,
    forward: Forward,
    before: Listed[],
    touched: Set<string>,
  ): Promise<WireResponse | undefined> {
    const after = await listRrsets(req, zoneId, forward);
    if (!Array.isArray(after)) return after;
    const present = new Set(after.map((l) => keyOf(l.rr)));
    const lost = before.filter((l) => !touched.has(keyOf(l.rr)) && !present.has(keyOf(l.rr)));
    if (lost.length === 0) return undefined;
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<ChangeResourceRecordSetsRequest xmlns="${NS}"><ChangeBatch><Changes>` +
      lost.map((l) => `<Change><Action>UPSERT</Action>${l.xml}</Change>`).join("") +
      `</Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`;
    const put = await forward({ ...req, body: Buffer.from(body, "utf8") });
    return put.status === 200 ? undefined : put;
  }

  /** Gives a successful change a unique id, PENDING as AWS answers at submission; moto has one fixed id, always INSYNC. */
  private trackChange(res: WireResponse): WireResponse {
    if (res.status < 200 || res.status >= 300) return res;
    const text = res.body.toString();
    if (!text.includes("<ChangeInfo>")) return res;
    const id = newChangeId();
    const at = this.now();
    this.changes.set(id, at);
    const body = text
      .replace(/(<ChangeInfo>[\s\S]*?<Id>)[^<]*(<\/Id>)/, `$1/change/${id}$2`)
      .replace(/(<ChangeInfo>[\s\S]*?<Status>)[^<]*(<\/Status>)/, "$1PENDING$2")
      .replace(/(<ChangeInfo>[\s\S]*?<SubmittedAt>)[^<]*(<\/SubmittedAt>)/, `$1${new Date(at).toISOString()}$2`);
    return { ...res, body };
  }

  private status(id: string): "PENDING" | "INSYNC" {
    const at = this.changes.get(id) ?? 0;
    return this.now() - at >= this.pendingMs ? "INSYNC" : "PENDING";
  }

  private getChange(req: WireRequest): WireResponse {
    const raw = decodeURIComponent(req.path.split("?", 1)[0]?.split("/change/")[1] ?? "");
    const id = raw.replace(/^\/?change\//, "");
    const at = this.changes.get(id);
    if (at === undefined) {
      return awsError("route53", 404, "NoSuchChange", `A change with the specified change ID does not exist: ${id}`);
    }
    const body =
      `<?xml version="1.0" encoding="UTF-8"?>\n<GetChangeResponse xmlns="${NS}"><ChangeInfo><Id>/change/${xmlEscape(id)}</Id>` +
      `<Status>${this.status(id)}</Status><SubmittedAt>${new Date(at).toISOString()}</SubmittedAt></ChangeInfo></GetChangeResponse>`;
    return { status: 200, headers: { "content-type": "text/xml", "x-amzn-requestid": randomUUID() }, body };
  }
}

/**
 * AWS's checks for one batch, applied in order to a working copy of the zone (so DELETE then CREATE of the same rrset
 * is the one legal repeat). Returns the InvalidChangeBatch messages, or a string for a malformed request.
 */
export function validateBatch(
  changes: { Action?: string; ResourceRecordSet?: XmlRrset }[],
  current: Rrset[],
  zoneName: string,
): string[] | string {
  const working = new Map(current.map((r) => [keyOf(r), r]));
  const actionsByKey = new Map<string, string[]>();
  const repeated = new Set<string>();
  const problems: string[] = [];
  for (const change of changes) {
    const action = change.Action ?? "";
    const xml = change.ResourceRecordSet;
    if (!["CREATE", "DELETE", "UPSERT"].includes(action) || !xml?.Name || !xml.Type) {
      return `Invalid request: Expected Action (CREATE, DELETE or UPSERT), Name and Type in every Change, found Action='${action}'`;
    }
    const rr = toRrset(xml);
    const key = keyOf(rr);
    const where = `[name='${rr.name}', type='${rr.type}'${rr.setId !== undefined ? `, set-identifier='${rr.setId}'` : ""}]`;
    if (rr.name !== zoneName && !rr.name.endsWith(`.${zoneName}`)) {
      problems.push(`RRSet with DNS name ${rr.name} is not permitted in zone ${zoneName}`);
      continue;
    }
    const actions = [...(actionsByKey.get(key) ?? []), action];
    actionsByKey.set(key, actions);
    const replaceInPlace = actions.length === 2 && actions[0] === "DELETE" && action === "CREATE";
    if (actions.length > 1 && !replaceInPlace) {
      if (!repeated.has(key)) {
        problems.push(
          `The request contains an invalid set of changes for a resource record set '${rr.type} ${rr.name}'`,
        );
      }
      repeated.add(key);
      continue;
    }
    const existing = working.get(key);
    if (action === "DELETE") {
      if (!existing) problems.push(`Tried to delete resource record set ${where} but it was not found`);
      else if (existing.content !== rr.content) {
        problems.push(
          `Tried to delete resource record set ${where} but the values provided do not match the current values`,
        );
      } else working.delete(key);
      continue;
    }
    if (action === "CREATE" && existing) {
      problems.push(`Tried to create resource record set ${where} but it already exists`);
      continue;
    }
    const conflict = cnameConflict(rr, working, zoneName);
    if (conflict) {
      problems.push(conflict);
      continue;
    }
    working.set(key, rr);
  }
  if (problems.length === 0) problems.push(...routingConflicts([...actionsByKey.keys()], working));
  return problems;
}

/**
 * The record sets of one name and type must agree: all simple (one) or all of one routing policy, each with its own
 * set identifier, and at most one PRIMARY and one SECONDARY failover record. moto accepts any mix. The messages are
 * in AWS's style; their exact wording is unconfirmed [U].
 */
function routingConflicts(keys: string[], working: Map<string, Rrset>): string[] {
  const problems: string[] = [];
  const groups = new Set(keys.map((k) => k.split("|").slice(0, 2).join("|")));
  for (const group of groups) {
    const sets = [...working.values()].filter((r) => `${r.name}|${r.type}` === group);
    if (sets.length < 2) continue;
    const [name, type] = group.split("|") as [string, string];
    const simple = sets.find((r) => r.setId === undefined);
    const policies = new Set(sets.map((r) => r.policy));
    if (simple) {
      problems.push(
        `RRSet with DNS name ${name}, type ${type} cannot be created as a non-routing-policy set exists with the same name and type`,
      );
    } else if (policies.size > 1) {
      problems.push(
        `RRSet with DNS name ${name}, type ${type} cannot be created because routing policies (${[...policies].sort().join(", ")}) are mixed`,
      );
    } else {
      for (const role of ["PRIMARY", "SECONDARY"]) {
        if (sets.filter((r) => r.failover === role).length > 1) {
          problems.push(`RRSet with DNS name ${name}, type ${type} cannot have more than one ${role} failover record`);
        }
      }
    }
  }
  return problems;
}

/** A CNAME cannot share its name with any other record type. */
function cnameConflict(rr: Rrset, working: Map<string, Rrset>, zoneName: string): string | undefined {
  for (const other of working.values()) {
    if (other.name !== rr.name || other.type === rr.type) continue;
    if (rr.type === "CNAME") {
      return `RRSet of type CNAME with DNS name ${rr.name} is not permitted as it conflicts with other records with the same DNS name in zone ${zoneName}`;
    }
    if (other.type === "CNAME") {
      return `RRSet of type ${rr.type} with DNS name ${rr.name} is not permitted because a conflicting RRSet of type CNAME with the same DNS name already exists in zone ${zoneName}`;
    }
  }
  return undefined;
}

function keyOf(r: Rrset): string {
  return `${r.name}|${r.type}|${r.setId ?? ""}`;
}

/** Lower-case, `\ddd` escapes decoded (AWS lists `*` as `\052`), one trailing dot. */
export function normaliseName(name: string): string {
  const decoded = name.replace(/\\(\d{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  const lower = decoded.toLowerCase();
  return lower.endsWith(".") ? lower : `${lower}.`;
}

function toRrset(xml: XmlRrset): Rrset {
  const { Name, Type, SetIdentifier, TTL, ResourceRecords, AliasTarget, ...routing } = xml;
  // moto lists alias records with a TTL of 0 that AWS does not have; for an alias only the target counts.
  const content = AliasTarget
    ? {
        alias: [
          AliasTarget.HostedZoneId ?? "",
          normaliseName(AliasTarget.DNSName ?? ""),
          String(AliasTarget.EvaluateTargetHealth ?? "false").toLowerCase(),
        ],
      }
    : {
        ttl: TTL === undefined ? undefined : Number(TTL),
        values: (ResourceRecords?.ResourceRecord ?? []).map((r) => r.Value ?? "").sort(),
      };
  const setId = SetIdentifier === undefined || SetIdentifier === "" ? undefined : SetIdentifier;
  const policy =
    setId === undefined
      ? "simple"
      : (routing.MultiValueAnswer ?? "").toLowerCase() === "true"
        ? "multivalue"
        : routing.Weight !== undefined
          ? "weighted"
          : routing.Failover !== undefined
            ? "failover"
            : "other";
  return {
    name: normaliseName(Name ?? ""),
    type: (Type ?? "").toUpperCase(),
    setId,
    content: canonical({ ...content, routing }),
    policy,
    ...(routing.Failover !== undefined && { failover: routing.Failover }),
  };
}

/** JSON with sorted keys and empty values dropped, so the same rrset from a request and from a listing compare equal. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && v !== "" && !(typeof v === "object" && v && Object.keys(v).length === 0))
      .sort(([a], [b]) => a.localeCompare(b));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  // Leaves: strings from the XML; numbers and booleans from our own objects.
  return typeof value === "string" || typeof value === "number" || typeof value === "boolean"
    ? JSON.stringify(String(value))
    : "null";
}

/** Every rrset in the zone, read from moto directly. moto cannot page inside one name+type, so ask for it all at once. */
async function listRrsets(req: WireRequest, zoneId: string, forward: Forward): Promise<Listed[] | WireResponse> {
  const out = new Map<string, Listed>();
  let start = "";
  for (;;) {
    const res = await forward(read(req, `${API}/hostedzone/${zoneId}/rrset?maxitems=100000${start}`));
    if (res.status !== 200) return res;
    const text = res.body.toString();
    const page = (
      parser.parse(text) as {
        ListResourceRecordSetsResponse?: {
          IsTruncated?: string;
          NextRecordName?: string;
          NextRecordType?: string;
          NextRecordIdentifier?: string;
        };
      }
    ).ListResourceRecordSetsResponse;
    const before = out.size;
    // One <ResourceRecordSet> element at a time, kept as moto wrote it (a listing page and a CREATE reuse it).
    for (const xml of text.match(/<ResourceRecordSet>[\s\S]*?<\/ResourceRecordSet>/g) ?? []) {
      const parsed = parser.parse(`<Change>${xml}</Change>`) as { Change?: { ResourceRecordSet?: XmlRrset }[] };
      const rr = toRrset(parsed.Change?.[0]?.ResourceRecordSet ?? {});
      out.set(keyOf(rr), { rr, xml });
    }
    if (page?.IsTruncated !== "true" || out.size === before || !page.NextRecordName) break;
    start =
      `&name=${encodeURIComponent(page.NextRecordName)}&type=${encodeURIComponent(page.NextRecordType ?? "")}` +
      (page.NextRecordIdentifier ? `&identifier=${encodeURIComponent(page.NextRecordIdentifier)}` : "");
  }
  return [...out.values()];
}

/** Where a name sorts in AWS's listing: labels reversed, with the trailing dot, compared as ASCII ("com.example.www."). */
export function listingOrderKey(name: string): string {
  const bare = normaliseName(name).slice(0, -1);
  return bare === "" ? "." : `${bare.split(".").reverse().join(".")}.`;
}

function compareListed(a: [string, string, string], b: [string, string, string]): number {
  for (let i = 0; i < 3; i++) {
    if (a[i]! < b[i]!) return -1;
    if (a[i]! > b[i]!) return 1;
  }
  return 0;
}

/**
 * ListResourceRecordSets as AWS answers it: sorted by reversed name, then type (then set identifier); starting at the
 * first record set at or after name/type/identifier; at most 300 (default 300); NextRecordName, NextRecordType and
 * NextRecordIdentifier naming the first one left out. moto pages without identifiers, so a page boundary inside one
 * name and type repeats itself for ever.
 */
async function listPage(req: WireRequest, forward: Forward): Promise<WireResponse> {
  const zoneId = zoneIdOf(req.path);
  const q = new URLSearchParams(req.path.split("?")[1] ?? "");
  const [name, type, identifier] = [q.get("name"), q.get("type"), q.get("identifier")];
  if (type !== null && name === null) {
    return awsError("route53", 400, "InvalidInput", "Invalid request: the type parameter requires a name");
  }
  if (identifier !== null && (name === null || type === null)) {
    return awsError(
      "route53",
      400,
      "InvalidInput",
      "Invalid request: the identifier parameter requires a name and a type",
    );
  }
  const max = Math.min(300, Math.max(1, Number(q.get("maxitems") ?? "300") || 300));
  const listed = await listRrsets(read(req, req.path), zoneId, forward);
  if (!Array.isArray(listed)) return listed;
  const position = (l: Listed): [string, string, string] => [listingOrderKey(l.rr.name), l.rr.type, l.rr.setId ?? ""];
  const sorted = listed.sort((a, b) => compareListed(position(a), position(b)));
  const start: [string, string, string] = [
    name === null ? "" : listingOrderKey(name),
    (type ?? "").toUpperCase(),
    identifier ?? "",
  ];
  const from = sorted.findIndex((l) => compareListed(position(l), start) >= 0);
  const rest = from < 0 ? [] : sorted.slice(from);
  const page = rest.slice(0, max);
  const next = rest[max];
  const body =
    `<?xml version="1.0" encoding="UTF-8"?>\n<ListResourceRecordSetsResponse xmlns="${NS}"><ResourceRecordSets>` +
    page.map((l) => l.xml).join("") +
    `</ResourceRecordSets><IsTruncated>${next ? "true" : "false"}</IsTruncated>` +
    (next
      ? `<NextRecordName>${xmlEscape(next.rr.name)}</NextRecordName><NextRecordType>${next.rr.type}</NextRecordType>` +
        (next.rr.setId !== undefined ? `<NextRecordIdentifier>${xmlEscape(next.rr.setId)}</NextRecordIdentifier>` : "")
      : "") +
    `<MaxItems>${max}</MaxItems></ListResourceRecordSetsResponse>`;
  return { status: 200, headers: { "content-type": "text/xml", "x-amzn-requestid": randomUUID() }, body };
}

/** A read sent straight to moto on behalf of the caller (same credentials, so moto routes and authorises it alike). */
function read(req: WireRequest, path: string): WireRequest {
  const headers = { ...req.headers };
  delete headers["content-length"];
  delete headers["content-type"];
  return { ...req, method: "GET", path, headers, body: Buffer.alloc(0) };
}

function zoneIdOf(path: string): string {
  return decodeURIComponent(/\/hostedzone\/([^/?]+)/.exec(path)?.[1] ?? "");
}

function newChangeId(): string {
  const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  return `C${[...randomBytes(13)].map((b) => alphabet[b % alphabet.length]).join("")}`;
}
