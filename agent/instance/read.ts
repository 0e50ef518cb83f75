// Reads what bootlace knows about its own instance (InstanceFacts) and its user-data from IMDS, once per run.
import { MetadataUnavailableError } from "../core/errors";
import type { InstanceFacts } from "./facts";
import type { MetadataReader } from "./imds";
import { isDnsName, isIPv4, isIPv6 } from "../core/names";

const IDENTITY_PATH = "dynamic/instance-identity/document";

/** Checks per item: what later lands in API calls and files must have the shape AWS gives it. */
const shapes = {
  instanceId: /^i-[0-9a-f]{8}(?:[0-9a-f]{9})?$/,
  region: /^[a-z]{2}(?:-[a-z]+)+-\d+$/,
  accountId: /^\d{12}$/,
  mac: /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/i,
  vpcId: /^vpc-[0-9a-f]{8,17}$/,
  subnetId: /^subnet-[0-9a-f]{8,17}$/,
  interfaceId: /^eni-[0-9a-f]{8,17}$/,
};

function garbage(path: string, value: string, expected: string): MetadataUnavailableError {
  return new MetadataUnavailableError(`IMDS ${path} returned ${JSON.stringify(value)}; expected ${expected}`);
}

/** Text at path, trimmed; undefined when absent. */
async function optional(imds: MetadataReader, path: string): Promise<string | undefined> {
  return (await imds.getText(path))?.trim();
}

async function required(imds: MetadataReader, path: string): Promise<string> {
  const value = await optional(imds, path);
  if (value === undefined || value === "") {
    throw new MetadataUnavailableError(`IMDS has no ${path} (404 or empty); bootlace needs it`);
  }
  return value;
}

function check(path: string, value: string, ok: boolean, expected: string): string {
  if (!ok) throw garbage(path, value, expected);
  return value;
}

function isIPv4Cidr(value: string): boolean {
  const [ip, bits, ...rest] = value.split("/");
  return (
    rest.length === 0 &&
    ip !== undefined &&
    isIPv4(ip) &&
    bits !== undefined &&
    /^\d{1,2}$/.test(bits) &&
    Number(bits) <= 32
  );
}

type Identity = Pick<InstanceFacts, "id" | "region" | "az" | "accountId">;

/** The signed identity document answers four questions in one read; the placement paths are the fallback. */
async function readIdentity(imds: MetadataReader): Promise<Identity> {
  const text = await imds.getText(IDENTITY_PATH);
  let doc: Record<string, unknown> = {};
  if (text !== undefined) {
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("not an object");
      doc = parsed as Record<string, unknown>;
    } catch {
      throw garbage(IDENTITY_PATH, text.slice(0, 200), "a JSON object");
    }
  }
  const field = (name: string): string | undefined => {
    const v = doc[name];
    return typeof v === "string" && v !== "" ? v : undefined;
  };
  const [idRaw, region, az] = await Promise.all([
    field("instanceId") ?? required(imds, "meta-data/instance-id"),
    field("region") ?? required(imds, "meta-data/placement/region"),
    field("availabilityZone") ?? required(imds, "meta-data/placement/availability-zone"),
  ]);
  const accountId = field("accountId");
  const where = (name: string, fallback: string): string =>
    field(name) !== undefined ? `${IDENTITY_PATH} ${name}` : fallback;
  check(
    where("instanceId", "meta-data/instance-id"),
    idRaw,
    shapes.instanceId.test(idRaw),
    "i- and 8 or 17 hex digits",
  );
  check(where("region", "meta-data/placement/region"), region, shapes.region.test(region), "a region like eu-west-1");
  // Local Zone and Wavelength AZs extend the region name ("us-east-1-bos-1a"), so only the prefix is certain.
  check(
    where("availabilityZone", "meta-data/placement/availability-zone"),
    az,
    az.startsWith(region) && /^[a-z0-9-]+$/.test(az) && az.length > region.length,
    `an availability zone of ${region}`,
  );
  if (accountId !== undefined) {
    check(`${IDENTITY_PATH} accountId`, accountId, shapes.accountId.test(accountId), "12 digits");
  }
  return { id: idRaw, region, az, ...(accountId !== undefined ? { accountId } : {}) };
}

async function readNetwork(
  imds: MetadataReader,
): Promise<Pick<InstanceFacts, "mac" | "vpcId" | "subnetId" | "vpcCidr" | "interfaceId" | "privateIpv4s" | "ipv6s">> {
  const mac = (await required(imds, "meta-data/mac")).toLowerCase();
  check("meta-data/mac", mac, shapes.mac.test(mac), "a MAC address like 0a:1b:2c:3d:4e:5f");
  const base = `meta-data/network/interfaces/macs/${mac}`;
  const [vpcId, subnetId, cidrs, interfaceId, ips, v6] = await Promise.all([
    required(imds, `${base}/vpc-id`),
    required(imds, `${base}/subnet-id`),
    required(imds, `${base}/vpc-ipv4-cidr-block`),
    optional(imds, `${base}/interface-id`),
    optional(imds, `${base}/local-ipv4s`),
    optional(imds, `${base}/ipv6s`),
  ]);
  check(`${base}/vpc-id`, vpcId, shapes.vpcId.test(vpcId), "vpc- and hex digits");
  check(`${base}/subnet-id`, subnetId, shapes.subnetId.test(subnetId), "subnet- and hex digits");
  check(`${base}/vpc-ipv4-cidr-block`, cidrs, isIPv4Cidr(cidrs), "an IPv4 CIDR block like 10.0.0.0/16");
  if (interfaceId)
    check(`${base}/interface-id`, interfaceId, shapes.interfaceId.test(interfaceId), "eni- and hex digits");
  const lines = (text: string | undefined): string[] | undefined =>
    text
      ?.split("\n")
      .map((ip) => ip.trim())
      .filter((ip) => ip !== "");
  const privateIpv4s = lines(ips);
  // 404 when the interface has no IPv6 address; what is there must be addresses, one a line.
  const ipv6s = lines(v6);
  for (const ip of ipv6s ?? []) check(`${base}/ipv6s`, ip, isIPv6(ip), "IPv6 addresses, one a line");
  return {
    mac,
    vpcId,
    subnetId,
    vpcCidr: cidrs,
    ...(interfaceId ? { interfaceId } : {}),
    ...(privateIpv4s && privateIpv4s.length > 0 ? { privateIpv4s } : {}),
    ...(ipv6s && ipv6s.length > 0 ? { ipv6s } : {}),
  };
}

/** Instance tags, or undefined when IMDS does not expose them (InstanceMetadataTags is off by default). */
async function readTags(imds: MetadataReader): Promise<Record<string, string> | undefined> {
  const listing = await imds.getText("meta-data/tags/instance/");
  if (listing === undefined) return undefined;
  const keys = listing.split("\n").filter((k) => k !== "");
  const values = await Promise.all(
    keys.map(async (key) => {
      const path = `meta-data/tags/instance/${encodeURIComponent(key)}`;
      // A tag deleted between the listing and this read is simply gone; anything else is a real answer.
      return [key, await imds.getText(path)] as const;
    }),
  );
  const tags: Record<string, string> = {};
  for (const [key, value] of values) if (value !== undefined) tags[key] = value;
  return tags;
}

/**
 * Every fact in as few round-trip generations as possible: boot time is spent here before anything else can start.
 * The tags come apart: undefined when IMDS does not expose them (the instance context then reads them from the API).
 */
export async function readInstanceFacts(
  imds: MetadataReader,
): Promise<{ facts: InstanceFacts; tags?: Record<string, string> }> {
  const [identity, privateIpv4, publicIpv4, network, hostname, tags] = await Promise.all([
    readIdentity(imds),
    required(imds, "meta-data/local-ipv4"),
    optional(imds, "meta-data/public-ipv4"),
    readNetwork(imds),
    optional(imds, "meta-data/hostname"),
    readTags(imds),
  ]);
  check("meta-data/local-ipv4", privateIpv4, isIPv4(privateIpv4), "an IPv4 address");
  for (const ip of network.privateIpv4s ?? []) {
    check(`meta-data/network/interfaces/macs/${network.mac}/local-ipv4s`, ip, isIPv4(ip), "IPv4 addresses, one a line");
  }
  if (publicIpv4) check("meta-data/public-ipv4", publicIpv4, isIPv4(publicIpv4), "an IPv4 address");
  if (hostname) check("meta-data/hostname", hostname, isDnsName(hostname), "a DNS name");
  const facts: InstanceFacts = {
    ...identity,
    privateIpv4,
    ...(publicIpv4 ? { publicIpv4 } : {}),
    ...network,
    ...(hostname ? { hostname } : {}),
  };
  return { facts, ...(tags !== undefined && { tags }) };
}

/** The raw user-data bytes (possibly gzip or MIME multipart; decoding is the config loader's job); undefined when none. */
export function readUserData(imds: MetadataReader): Promise<Buffer | undefined> {
  return imds.getBytes("user-data");
}
