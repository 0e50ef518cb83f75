// EC2 Elastic IPs as AWS behaves and moto 5.2.1 does not: AssociateAddress without AllowReassociation=true refuses an
// address associated elsewhere (moto only notices an association made by instance id, not one made by interface),
// and a free address has no empty association fields; filter values keep AWS's escapes (moto matches DescribeAddresses
// filters with fnmatch, where `\*` is not a literal `*`, and DescribeInstances ones without `\\`). Tests can also stage the races AWS has at boot: another instance
// taking an address just before an agent's AssociateAddress, or several agents' calls arriving together.
import { XMLParser } from "fast-xml-parser";
import { awsError, type Interceptor, type WireRequest, type WireResponse } from "./aws-wire";

type Forward = (req: WireRequest) => Promise<WireResponse>;

export interface Ec2Controls {
  /**
   * The next AssociateAddress (of this allocation, or of any when omitted) loses the race: just before it reaches moto,
   * the address is associated with `toInstanceId`, as if another instance had been faster.
   */
  loseNextAssociation(o: { allocationId?: string; toInstanceId: string }): void;
  /** The next `count` AssociateAddress calls wait until all `count` have arrived, then go on together (a race). */
  holdAssociations(count: number): void;
  /** Forgets staged races and releases held calls. */
  reset(): void;
}

interface AddressXml {
  allocationId?: string;
  associationId?: string;
  instanceId?: string;
  networkInterfaceId?: string;
  privateIpAddress?: string;
}

const parser = new XMLParser({ ignoreAttributes: true, removeNSPrefix: true, parseTagValue: false });
const VERSION = "2016-11-15";

export class Ec2Fidelity implements Ec2Controls {
  private rivals: { allocationId?: string; toInstanceId: string }[] = [];
  /** One AssociateAddress at a time per address: AWS's check and change are one step, the proxy's two. */
  private readonly addressQueues = new Map<string, Promise<unknown>>();
  private barrier: { count: number; arrived: number; release: () => void; released: Promise<void> } | undefined;

  loseNextAssociation(o: { allocationId?: string; toInstanceId: string }): void {
    this.rivals.push(o);
  }

  holdAssociations(count: number): void {
    let release = (): void => undefined;
    const released = new Promise<void>((r) => (release = r));
    this.barrier = { count, arrived: 0, release, released };
  }

  reset(): void {
    this.rivals = [];
    this.barrier?.release();
    this.barrier = undefined;
  }

  interceptors(): Record<string, Interceptor> {
    return {
      AssociateAddress: (req, forward) => this.associate(req, forward),
      DescribeAddresses: async (req, forward) => withoutEmptyAssociation(await forward(withAwsEscapes(req))),
      DescribeInstances: (req, forward) => forward(withAwsEscapes(req)),
    };
  }

  private async associate(req: WireRequest, forward: Forward): Promise<WireResponse> {
    const params = new URLSearchParams(req.body.toString("utf8"));
    // A dry run only asks whether the caller may: AWS answers it from the permission check, with no race to stage.
    if (params.get("DryRun") === "true") return forward(req);
    const allocationId = params.get("AllocationId") ?? "";
    await this.arrive();
    const previous = this.addressQueues.get(allocationId) ?? Promise.resolve();
    const next = previous.then(
      () => this.associateNow(req, params, allocationId, forward),
      () => this.associateNow(req, params, allocationId, forward),
    );
    this.addressQueues.set(
      allocationId,
      next.catch(() => undefined),
    );
    return next;
  }

  private async associateNow(
    req: WireRequest,
    params: URLSearchParams,
    allocationId: string,
    forward: Forward,
  ): Promise<WireResponse> {
    const rival = this.rivals.findIndex((r) => r.allocationId === undefined || r.allocationId === allocationId);
    if (rival >= 0) {
      const [{ toInstanceId }] = this.rivals.splice(rival, 1) as [{ toInstanceId: string }];
      const taken = await forward(
        query(req, {
          Action: "AssociateAddress",
          AllocationId: allocationId,
          InstanceId: toInstanceId,
          AllowReassociation: "true",
        }),
      );
      if (taken.status !== 200) return taken;
    }
    if (params.get("AllowReassociation") !== "true") {
      const current = await describeAddress(req, allocationId, forward);
      if (current?.associationId && !sameTarget(current, params)) {
        return awsError(
          "ec2",
          400,
          "Resource.AlreadyAssociated",
          `resource ${allocationId} is already associated with associate-id ${current.associationId}`,
        );
      }
    }
    return forward(req);
  }

  private async arrive(): Promise<void> {
    const b = this.barrier;
    if (!b) return;
    b.arrived += 1;
    if (b.arrived >= b.count) {
      this.barrier = undefined;
      b.release();
    }
    await b.released;
  }
}

/** Whether the request would associate the address where it already is (then AWS has nothing to refuse). */
function sameTarget(current: AddressXml, params: URLSearchParams): boolean {
  const eni = params.get("NetworkInterfaceId");
  const instance = params.get("InstanceId");
  return (eni !== null && eni === current.networkInterfaceId) || (instance !== null && instance === current.instanceId);
}

async function describeAddress(
  req: WireRequest,
  allocationId: string,
  forward: Forward,
): Promise<AddressXml | undefined> {
  const res = await forward(query(req, { Action: "DescribeAddresses", "AllocationId.1": allocationId }));
  if (res.status !== 200) return undefined;
  const doc = parser.parse(res.body.toString("utf8")) as {
    DescribeAddressesResponse?: { addressesSet?: { item?: AddressXml | AddressXml[] } };
  };
  const item = doc.DescribeAddressesResponse?.addressesSet?.item;
  return Array.isArray(item) ? item[0] : item;
}

/** A query-protocol request sent to moto on the caller's behalf (moto checks no signature unless IAM is enforced). */
function query(req: WireRequest, params: Record<string, string>): WireRequest {
  const body = Buffer.from(new URLSearchParams({ Version: VERSION, ...params }).toString(), "utf8");
  const headers = { ...req.headers, "content-length": String(body.length) };
  return { ...req, method: "POST", path: "/", headers, body, operation: params.Action ?? req.operation };
}

/**
 * AWS filter values: `*` and `?` are wildcards, `\*`, `\?` and `\\` stand for themselves. moto's DescribeAddresses
 * hands them to fnmatch, which has no escapes: each escaped character (and a `[`) becomes a one-character class.
 */
function withAwsEscapes(req: WireRequest): WireRequest {
  const params = new URLSearchParams(req.body.toString("utf8"));
  const names = [...params.keys()].filter((k) => /^Filter\.\d+\.Value\.\d+$/.test(k));
  if (names.length === 0) return req;
  for (const name of names) {
    params.set(
      name,
      params.get(name)!.replace(/\\([*?\\])|\[/g, (m, c: string | undefined) => `[${c ?? m}]`),
    );
  }
  return query(req, Object.fromEntries(params));
}

/** AWS leaves out the association fields of a free address; moto sends them empty. */
function withoutEmptyAssociation(res: WireResponse): WireResponse {
  if (res.status !== 200) return res;
  const body = res.body
    .toString("utf8")
    .replace(
      /<(instanceId|networkInterfaceId|associationId|privateIpAddress)>\s*<\/\1>|<(instanceId|networkInterfaceId|associationId|privateIpAddress)\/>/g,
      "",
    );
  return { ...res, body };
}
