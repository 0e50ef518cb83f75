// A token-enforcing IMDSv2 stand-in on 127.0.0.1 for unit tests, integration tests and the demo (moto's IMDS accepts
// any token and lacks most paths: reference, section 6). The served tree is built from one nested object per request,
// so a listing and the leaves under it cannot disagree, and update() takes effect on the next request.
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface ImdsInstance {
  instanceId: string;
  region: string;
  az: string;
  accountId: string;
  privateIpv4: string;
  publicIpv4?: string;
  mac: string;
  vpcId: string;
  subnetId: string;
  vpcCidr: string;
  interfaceId?: string;
  /** The primary interface's IPv6 addresses (meta-data/network/interfaces/macs/<mac>/ipv6s); none → 404. */
  ipv6s?: string[];
  hostname?: string;
  instanceType?: string;
  imageId?: string;
  /** Served under meta-data/tags/instance/ only when tagsEnabled. */
  tags?: Record<string, string>;
  /** /latest/user-data; absent → 404. */
  userData?: Buffer | string;
  /** Instance profile role name; default "bootlace-test-role". */
  role?: string;
  /** Served at meta-data/iam/security-credentials/<role>; default test credentials. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** meta-data/autoscaling/target-lifecycle-state (InService, Warmed:Stopped...); absent → 404, as outside a group. */
  lifecycleState?: string;
  /** meta-data/instance-life-cycle; default "on-demand". */
  instanceLifeCycle?: "spot" | "on-demand" | "scheduled";
  /** meta-data/spot/instance-action, once EC2 has marked the instance (time: ISO 8601); absent → 404. */
  spotAction?: { action: "terminate" | "stop" | "hibernate"; time: string };
  /** meta-data/events/recommendations/rebalance, once EC2 has emitted one (noticeTime: ISO 8601); absent → 404. */
  rebalance?: { noticeTime: string };
}

export interface ImdsEmulatorOptions {
  instance: ImdsInstance;
  /** Default true. */
  tagsEnabled?: boolean;
  /** Default 0 (a free port). */
  port?: number;
  /** Clock for token expiry; default Date.now. */
  now?: () => number;
  /** Slow boot: for this long (real time) after start every request fails the way unavailableMode says. */
  availableAfterMs?: number;
  /** "refuse": not listening yet (connection refused), the default; "reset": TCP reset; "503": Service Unavailable. */
  unavailableMode?: "refuse" | "reset" | "503";
  /** A service that stays flaky once up: this share of all requests fails (see setFlaky). */
  flaky?: ImdsFlakiness;
  /**
   * The instance profile: its credentials are served this long (real time) after start, and before that meta-data/iam/
   * is absent (404), as while an instance profile is still being associated at boot. Infinity: no instance profile.
   */
  credentialsAfterMs?: number;
}

/** Faults drawn per request, token PUTs and tokenless requests included. */
export interface ImdsFlakiness {
  /** Share of requests that fail, 0..1. */
  rate: number;
  /** An HTTP status (default 500), or "reset": the connection is reset without an answer. */
  fault?: number | "reset";
  /** Random source in [0, 1); default Math.random. */
  random?: () => number;
}

export interface ImdsRequestRecord {
  method: string;
  path: string;
  /** 0: the connection was reset instead, or never answered (setTokenReplyLost). */
  status: number;
  token: "none" | "valid" | "invalid";
}

/** A patch that may also clear optional fields (e.g. { publicIpv4: undefined } once an address is released). */
export type ImdsInstancePatch = { [K in keyof ImdsInstance]?: ImdsInstance[K] | undefined };

export interface ImdsEmulator {
  /** "http://127.0.0.1:PORT" */
  endpoint: string;
  requests: ImdsRequestRecord[];
  tokensIssued: number;
  update(patch: ImdsInstancePatch): void;
  setTagsEnabled(on: boolean): void;
  /** 403 on everything, as HttpEndpoint=disabled. */
  setDisabled(on: boolean): void;
  /** 503 on everything while on, as a metadata service still starting (the fleet benchmark holds its agents so). */
  setUnavailable(on: boolean): void;
  /** Token PUTs are accepted and never answered: what a hop limit of 1 looks like from inside a container. */
  setTokenReplyLost(on: boolean): void;
  /** The next GET with a token issued so far gets 401. */
  expireAllTokens(): void;
  /**
   * The next `count` (default 1) requests whose path starts with pathPrefix (full, or relative to /latest/) get
   * `status`, after the first `skip` (default 0) such requests are answered normally.
   */
  failNext(status: number, count?: number, pathPrefix?: string, skip?: number): void;
  /** From the next request on, this share of requests fails; undefined ends it. */
  setFlaky(flaky: ImdsFlakiness | undefined): void;
  /** Serve the instance profile's credentials (true) or nothing under meta-data/iam/ (false), from now on. */
  setInstanceProfile(on: boolean): void;
  /** GETs that carried no token (IMDSv1): bootlace must never send one. */
  tokenless(): ImdsRequestRecord[];
  close(): Promise<void>;
}

export const DEFAULT_ROLE = "bootlace-test-role";
export const DEFAULT_CREDENTIALS = {
  accessKeyId: "ASIAIMDSEMULATOR0001",
  secretAccessKey: "imds-emulator-secret-access-key-not-real",
  sessionToken: "imds-emulator-session-token-not-real",
};

/** A plausible instance for tests that do not care about the details. */
export function testInstance(overrides: ImdsInstancePatch = {}): ImdsInstance {
  const base: ImdsInstance = {
    instanceId: "i-0123456789abcdef0",
    region: "eu-west-1",
    az: "eu-west-1b",
    accountId: "123456789012",
    privateIpv4: "10.20.1.17",
    publicIpv4: "203.0.113.25",
    mac: "0a:1b:2c:3d:4e:5f",
    vpcId: "vpc-0a1b2c3d4e5f60718",
    subnetId: "subnet-0fedcba9876543210",
    vpcCidr: "10.20.0.0/16",
    hostname: "ip-10-20-1-17.eu-west-1.compute.internal",
    tags: { Name: "web-1", Role: "web" },
  };
  return withPatch(base, overrides);
}

function withPatch(instance: ImdsInstance, patch: ImdsInstancePatch): ImdsInstance {
  const next: Record<string, unknown> = { ...instance };
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete next[k];
    else next[k] = v;
  }
  return next as unknown as ImdsInstance;
}

type Tree = { [name: string]: Tree | string | Buffer };

const TTL_HEADER = "x-aws-ec2-metadata-token-ttl-seconds";
const TOKEN_HEADER = "x-aws-ec2-metadata-token";
const SIX_HOURS_MS = 6 * 3600 * 1000;

/** IMDS cannot expose tag keys with "/" or spaces (reference, section 1); catch that in the test, not at request time. */
function checkTags(tags: Record<string, string> | undefined): void {
  for (const key of Object.keys(tags ?? {})) {
    if (/[/ ]/.test(key)) throw new Error(`IMDS cannot serve tag key "${key}": keys may not contain "/" or spaces`);
  }
}

/** meta-data/iam/: the instance profile and its role's current credentials. */
function iamTree(i: ImdsInstance): Tree {
  const role = i.role ?? DEFAULT_ROLE;
  const creds = { ...DEFAULT_CREDENTIALS, ...i.credentials };
  // Credentials are checked against the SDK's own wall clock, so they use Date.now, not the token clock.
  const wall = Date.now();
  return {
    info: JSON.stringify({
      Code: "Success",
      LastUpdated: new Date(wall).toISOString(),
      InstanceProfileArn: `arn:aws:iam::${i.accountId}:instance-profile/${role}`,
      InstanceProfileId: "AIPAIMDSEMULATOR00001",
    }),
    "security-credentials": {
      [role]: JSON.stringify({
        Code: "Success",
        LastUpdated: new Date(wall).toISOString(),
        Type: "AWS-HMAC",
        AccessKeyId: creds.accessKeyId,
        SecretAccessKey: creds.secretAccessKey,
        Token: creds.sessionToken ?? DEFAULT_CREDENTIALS.sessionToken,
        Expiration: new Date(wall + SIX_HOURS_MS).toISOString().replace(/\.\d{3}Z$/, "Z"),
      }),
    },
  };
}

function renderTree(i: ImdsInstance, tagsEnabled: boolean, instanceProfile: boolean): Tree {
  const hostname = i.hostname ?? `ip-${i.privateIpv4.replace(/\./g, "-")}.${i.region}.compute.internal`;
  const iface: Tree = {
    "device-number": "0",
    "interface-id": i.interfaceId ?? `eni-${i.instanceId.slice(2)}`,
    "local-ipv4s": i.privateIpv4,
    mac: i.mac,
    "owner-id": i.accountId,
    "subnet-id": i.subnetId,
    "vpc-id": i.vpcId,
    "vpc-ipv4-cidr-block": i.vpcCidr,
    "vpc-ipv4-cidr-blocks": i.vpcCidr,
    ...(i.publicIpv4 !== undefined ? { "public-ipv4s": i.publicIpv4 } : {}),
    ...(i.ipv6s !== undefined && i.ipv6s.length > 0 ? { ipv6s: i.ipv6s.join("\n") } : {}),
  };
  const metaData: Tree = {
    "ami-id": i.imageId ?? "ami-0abcdef1234567890",
    ...(i.lifecycleState !== undefined && { autoscaling: { "target-lifecycle-state": i.lifecycleState } }),
    hostname,
    ...(instanceProfile ? { iam: iamTree(i) } : {}),
    "instance-id": i.instanceId,
    "instance-type": i.instanceType ?? "t3.micro",
    "local-hostname": hostname,
    "local-ipv4": i.privateIpv4,
    mac: i.mac,
    network: { interfaces: { macs: { [i.mac]: iface } } },
    placement: { "availability-zone": i.az, region: i.region },
    ...(i.publicIpv4 !== undefined ? { "public-ipv4": i.publicIpv4 } : {}),
    ...(tagsEnabled ? { tags: { instance: { ...i.tags } } } : {}),
    "instance-life-cycle": i.instanceLifeCycle ?? "on-demand",
    ...(i.lifecycleState !== undefined && { autoscaling: { "target-lifecycle-state": i.lifecycleState } }),
    ...(i.spotAction !== undefined && { spot: { "instance-action": JSON.stringify(i.spotAction) } }),
    ...(i.rebalance !== undefined && { events: { recommendations: { rebalance: JSON.stringify(i.rebalance) } } }),
  };
  const document = {
    accountId: i.accountId,
    architecture: "x86_64",
    availabilityZone: i.az,
    billingProducts: null,
    devpayProductCodes: null,
    marketplaceProductCodes: null,
    imageId: metaData["ami-id"],
    instanceId: i.instanceId,
    instanceType: metaData["instance-type"],
    kernelId: null,
    pendingTime: "2024-01-01T00:00:00Z",
    privateIp: i.privateIpv4,
    ramdiskId: null,
    region: i.region,
    version: "2017-09-30",
  };
  return {
    dynamic: { "instance-identity": { document: JSON.stringify(document, null, 2) } },
    "meta-data": metaData,
    ...(i.userData !== undefined ? { "user-data": i.userData } : {}),
  };
}

/** The node at /latest/<rest>: a directory lists its children one per line (subdirectories with a trailing "/"). */
function lookup(tree: Tree, rest: string): string | Buffer | undefined {
  const wantsListing = rest === "" || rest.endsWith("/");
  const segments = rest.split("/").filter((s) => s !== "");
  let node: Tree | string | Buffer = tree;
  for (const raw of segments) {
    if (typeof node === "string" || Buffer.isBuffer(node)) return undefined;
    let name: string;
    try {
      name = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (!Object.prototype.hasOwnProperty.call(node, name)) return undefined;
    node = node[name] as Tree | string | Buffer;
  }
  if (typeof node === "string" || Buffer.isBuffer(node)) return wantsListing ? undefined : node;
  // Like IMDS, a directory asked for without the trailing slash still lists.
  return Object.entries(node)
    .map(([name, child]) => (typeof child === "string" || Buffer.isBuffer(child) ? name : `${name}/`))
    .join("\n");
}

export async function startImdsEmulator(o: ImdsEmulatorOptions): Promise<ImdsEmulator> {
  checkTags(o.instance.tags);
  const now = o.now ?? Date.now;
  let instance = o.instance;
  let tagsEnabled = o.tagsEnabled ?? true;
  let disabled = false;
  let unavailable = false;
  let flaky = o.flaky;
  const started = Date.now();
  const profileAfter = o.credentialsAfterMs ?? 0;
  let instanceProfile: boolean | undefined; // set: overrides credentialsAfterMs
  let tokenReplyLost = false;
  const mode = o.unavailableMode ?? "refuse";
  let available = !(o.availableAfterMs && o.availableAfterMs > 0);
  const tokens = new Map<string, number>(); // token → expiry (epoch ms by `now`)
  const failures: { status: number; left: number; prefix: string; skip: number }[] = [];
  const sockets = new Set<Socket>();

  const emulator: ImdsEmulator = {
    endpoint: "",
    requests: [],
    tokensIssued: 0,
    update(patch) {
      checkTags(patch.tags);
      instance = withPatch(instance, patch);
    },
    setTagsEnabled(on) {
      tagsEnabled = on;
    },
    setDisabled(on) {
      disabled = on;
    },
    setUnavailable(on) {
      unavailable = on;
    },
    setTokenReplyLost(on) {
      tokenReplyLost = on;
    },
    expireAllTokens() {
      tokens.clear();
    },
    failNext(status, count = 1, pathPrefix = "/", skip = 0) {
      const prefix = pathPrefix.startsWith("/") ? pathPrefix : `/latest/${pathPrefix}`;
      failures.push({ status, left: count, prefix, skip });
    },
    setFlaky(f) {
      flaky = f;
    },
    setInstanceProfile(on) {
      instanceProfile = on;
    },
    tokenless: () => emulator.requests.filter((r) => r.method !== "PUT" && r.token === "none"),
    close: () => closeServer(),
  };

  const tokenState = (req: IncomingMessage): ImdsRequestRecord["token"] => {
    const token = req.headers[TOKEN_HEADER];
    if (typeof token !== "string" || token === "") return "none";
    const expiry = tokens.get(token);
    return expiry !== undefined && now() < expiry ? "valid" : "invalid";
  };

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? "GET";
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    const token = tokenState(req);
    const reply = (status: number, body: string | Buffer = "", headers: Record<string, string> = {}): void => {
      emulator.requests.push({ method, path, status, token });
      const payload = body === "" && status !== 200 ? defaultBody(status) : body;
      res.writeHead(status, { "Content-Type": "text/plain", ...headers });
      res.end(payload);
    };
    // Drain any body so keep-alive connections stay usable.
    req.resume();

    const reset = (): void => {
      emulator.requests.push({ method, path, status: 0, token });
      req.socket.resetAndDestroy();
    };

    if (!available) return mode === "reset" ? reset() : reply(503);
    if (unavailable) return reply(503);
    if (disabled) return reply(403);
    if (flaky && (flaky.random ?? Math.random)() < flaky.rate) {
      return flaky.fault === "reset" ? reset() : reply(flaky.fault ?? 500);
    }
    const failure = failures.find((f) => f.left > 0 && path.startsWith(f.prefix));
    if (failure && failure.skip > 0) failure.skip--;
    else if (failure) {
      failure.left--;
      return reply(failure.status);
    }

    if (method === "PUT") {
      // No reply at all: the socket stays open until the client gives up or the emulator closes.
      if (tokenReplyLost) return void emulator.requests.push({ method, path, status: 0, token });
      if (/^\/\d{4}-\d{2}-\d{2}\/api\/token$/.test(path)) return reply(403);
      if (path !== "/latest/api/token") return reply(405);
      if (req.headers["x-forwarded-for"] !== undefined) return reply(403);
      const ttl = req.headers[TTL_HEADER];
      if (typeof ttl !== "string" || !/^\d+$/.test(ttl) || Number(ttl) < 1 || Number(ttl) > 21600) return reply(400);
      const value = randomBytes(42).toString("base64");
      tokens.set(value, now() + Number(ttl) * 1000);
      emulator.tokensIssued++;
      return reply(200, value, { [TTL_HEADER]: ttl });
    }
    if (method !== "GET" && method !== "HEAD") return reply(405);
    // HttpTokens=required: no IMDSv1, so no answer of any kind without a valid token.
    if (token !== "valid") return reply(401);
    if (!path.startsWith("/latest/")) return reply(404);
    const profile = instanceProfile ?? Date.now() - started >= profileAfter;
    const found = lookup(renderTree(instance, tagsEnabled, profile), path.slice("/latest/".length));
    return found === undefined ? reply(404) : reply(200, found);
  };

  const server: Server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (error) {
      // A bug in the emulator must show up as a failing test, not a hung one.
      res.writeHead(500, { "Content-Type": "text/plain" });
      res.end(String(error));
    }
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    if (!available && mode === "reset") socket.resetAndDestroy();
  });

  const listen = (port: number): Promise<number> =>
    new Promise((resolve, reject) => {
      server.once("error", reject);
      // Loopback only: nothing outside this machine may reach the test IMDS.
      server.listen(port, "127.0.0.1", () => {
        server.off("error", reject);
        resolve((server.address() as AddressInfo).port);
      });
    });
  const unlisten = (): Promise<void> =>
    new Promise((resolve) => {
      if (!server.listening) return resolve();
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });

  const port = await listen(o.port ?? 0);
  emulator.endpoint = `http://127.0.0.1:${port}`;

  let timer: NodeJS.Timeout | undefined;
  let pending: Promise<unknown> = Promise.resolve();
  if (!available) {
    // "refuse": keep the port (so the endpoint is known) but stop listening until the service "boots".
    if (mode === "refuse") await unlisten();
    timer = setTimeout(() => {
      timer = undefined;
      available = true;
      if (mode === "refuse") pending = listen(port);
    }, o.availableAfterMs);
  }

  async function closeServer(): Promise<void> {
    if (timer) clearTimeout(timer);
    await pending.catch(() => undefined);
    await unlisten();
  }

  return emulator;
}

function defaultBody(status: number): string {
  const text: Record<number, string> = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
  };
  return text[status] ?? `Status ${status}`;
}
