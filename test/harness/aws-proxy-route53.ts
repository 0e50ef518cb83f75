// Route 53 as AWS behaves and moto 5.2.1 does not: change batches validated whole against the zone's current records
// and applied atomically, and changes that stay PENDING for a while under their own ids (reference, sections 4 and 6).
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
  [other: string]: unknown;
}

interface Rrset {
  name: string;
  type: string;
  setId: string | undefined;
  /** Everything DELETE must match, in a canonical form. */
  content: string;
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
    const current = await listRrsets(req, zoneId, forward);
    if (!Array.isArray(current)) return current;

    const problems = validateBatch(changes, current, zoneName);
    if (typeof problems === "string") return awsError("route53", 400, "InvalidInput", problems);
    if (problems.length > 0) return awsError("route53", 400, "InvalidChangeBatch", `[${problems.join(", ")}]`);

    // moto compares names case-sensitively and would reject part of a batch AWS accepts; AWS stores them lower-cased.
    const body = req.body
      .toString("utf8")
      .replace(/<Name>([^<]*)<\/Name>/g, (_, n: string) => `<Name>${n.toLowerCase()}</Name>`);
    return this.trackChange(await forward({ ...req, body: Buffer.from(body, "utf8") }));
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
  return {
    name: normaliseName(Name ?? ""),
    type: (Type ?? "").toUpperCase(),
    setId: SetIdentifier === undefined || SetIdentifier === "" ? undefined : SetIdentifier,
    content: canonical({ ...content, routing }),
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
async function listRrsets(req: WireRequest, zoneId: string, forward: Forward): Promise<Rrset[] | WireResponse> {
  const out = new Map<string, Rrset>();
  let start = "";
  for (;;) {
    const res = await forward(read(req, `${API}/hostedzone/${zoneId}/rrset?maxitems=100000${start}`));
    if (res.status !== 200) return res;
    const page = (
      parser.parse(res.body.toString()) as {
        ListResourceRecordSetsResponse?: {
          ResourceRecordSets?: { ResourceRecordSet?: XmlRrset[] };
          IsTruncated?: string;
          NextRecordName?: string;
          NextRecordType?: string;
          NextRecordIdentifier?: string;
        };
      }
    ).ListResourceRecordSetsResponse;
    const before = out.size;
    for (const xml of page?.ResourceRecordSets?.ResourceRecordSet ?? []) {
      const rr = toRrset(xml);
      out.set(keyOf(rr), rr);
    }
    if (page?.IsTruncated !== "true" || out.size === before || !page.NextRecordName) break;
    start =
      `&name=${encodeURIComponent(page.NextRecordName)}&type=${encodeURIComponent(page.NextRecordType ?? "")}` +
      (page.NextRecordIdentifier ? `&identifier=${encodeURIComponent(page.NextRecordIdentifier)}` : "");
  }
  return [...out.values()];
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
