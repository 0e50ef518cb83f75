// The AWS fidelity proxy: one loopback endpoint in front of moto that forwards everything unchanged, except the
// operations where moto is not faithful to AWS (reference, section 6), which per-service interceptors answer, and
// the faults a test injects. It records every call so tests can count what the agent did. With throttling on, AWS's
// account-wide token buckets (aws-proxy-throttle.ts) refuse calls as AWS does when a fleet boots at once.
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { awsError, isDryRun, isMutating, operationOf, serviceOf, type AwsService, type Interceptor } from "./aws-wire";
import type { WireRequest, WireResponse } from "./aws-wire";
import { AutoScalingFidelity, type AutoScalingControls } from "./aws-proxy-autoscaling";
import { Ec2Fidelity, type Ec2Controls } from "./aws-proxy-ec2";
import { Elbv2Fidelity, type Elbv2Controls } from "./aws-proxy-elbv2";
import { Route53Fidelity } from "./aws-proxy-route53";
import { TokenBuckets, type BucketStats } from "./aws-proxy-throttle";

export interface CallRecord {
  service: AwsService;
  operation: string;
  /** HTTP status answered; 0 when the connection was reset instead. */
  status: number;
  /** A call that would change something; an EC2 DryRun request changes nothing, so it is not counted here. */
  mutating: boolean;
  /** Set on an EC2 DryRun request (a permission check): its operation's name is a changing one, the call is not. */
  dryRun?: true;
  /** The fault kind injected into this call, if any. */
  injected?: string;
  /** Refused by the token buckets (throttling on). */
  throttled?: boolean;
  /** The AWS error code answered, for a call that failed (e.g. "Resource.AlreadyAssociated", "Throttling"). */
  code?: string;
  /** When it arrived (epoch ms, by the proxy's clock). */
  at: number;
}

export interface FaultRule {
  service?: AwsService;
  operation?: string;
  kind: "throttle" | "5xx" | "reset" | "latency";
  /** How many matching calls get the fault; default 1. */
  times?: number;
  latencyMs?: number;
  retryAfterSeconds?: number;
  /** For "5xx": 503 ServiceUnavailable (default) or 500 InternalError. */
  status?: 500 | 503;
}

export interface AwsProxy {
  endpoint: string;
  calls: CallRecord[];
  mutatingCalls(): CallRecord[];
  resetCalls(): void;
  inject(rule: FaultRule): void;
  clearFaults(): void;
  setRoute53PendingMs(ms: number): void;
  /**
   * AWS's token buckets from now on, divided by `scale` (1: AWS's own figures; 12.5: 40 agents stand for 500), each
   * starting full; undefined turns throttling off.
   */
  throttle(scale: number | undefined): void;
  /** The token buckets used since throttling was turned on, with what each let through and refused. */
  buckets(): BucketStats[];
  /** Every answer's Date header is this far from the real time (ms; positive: ahead), as from a skewed local clock. */
  setDateSkew(ms: number): void;
  /** Elastic IP races (aws-proxy-ec2.ts). */
  ec2: Ec2Controls;
  /** Target health over time and draining (aws-proxy-elbv2.ts). */
  elbv2: Elbv2Controls;
  /** Lifecycle actions, their results and heartbeats (aws-proxy-autoscaling.ts). */
  autoscaling: AutoScalingControls;
  close(): Promise<void>;
}

export interface AwsProxyOptions {
  /** moto's endpoint, e.g. "http://127.0.0.1:5000". */
  target: string;
  /** How long a Route 53 change stays PENDING; default 0 (INSYNC at the first GetChange). */
  route53PendingMs?: number;
  /** Clock for Route 53 change status and the token buckets; default Date.now. */
  now?: () => number;
  /** Throttling from the start, as AwsProxy.throttle(scale). */
  throttleScale?: number;
}

const HOP_BY_HOP = new Set(["connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te"]);
const FORWARD_TIMEOUT_MS = 60_000;

export async function startAwsProxy(o: AwsProxyOptions): Promise<AwsProxy> {
  const target = new URL(o.target);
  const route53 = new Route53Fidelity({ pendingMs: o.route53PendingMs ?? 0, now: o.now ?? Date.now });
  const ec2 = new Ec2Fidelity();
  const elbv2 = new Elbv2Fidelity(o.now ?? Date.now);
  const autoscaling = new AutoScalingFidelity(o.now ?? Date.now);
  // The registry, keyed "service:Operation".
  const interceptors: Record<string, Interceptor> = {
    ...prefixed("route53", route53.interceptors()),
    ...prefixed("ec2", ec2.interceptors()),
    ...prefixed("elasticloadbalancing", elbv2.interceptors()),
    ...prefixed("autoscaling", autoscaling.interceptors()),
  };

  const now = o.now ?? Date.now;
  const calls: CallRecord[] = [];
  let buckets = o.throttleScale !== undefined ? new TokenBuckets(o.throttleScale, now) : undefined;
  let dateSkewMs = 0;
  let faults: { rule: FaultRule; left: number }[] = [];
  const forward = (req: WireRequest): Promise<WireResponse> => forwardTo(target, req);

  const server = createServer((req, res) => {
    void handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) send(res, awsError("unknown", 500, "ProxyError", `aws-proxy: ${String(e)}`));
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const path = req.url ?? "/";
    const method = req.method ?? "GET";
    const service = serviceOf(req.headers, path);
    const operation = operationOf(service, method, path, body);
    const wire: WireRequest = { method, path, headers: req.headers, body, service, operation };
    const dryRun = isDryRun(path, body);
    const record: CallRecord = {
      service,
      operation,
      status: 0,
      mutating: isMutating(operation) && !dryRun,
      ...(dryRun && { dryRun: true as const }),
      at: now(),
    };
    calls.push(record);

    const fault = takeFault(service, operation);
    if (fault) record.injected = fault.kind;
    if (fault?.kind === "reset") {
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "throttle" || fault?.kind === "5xx") {
      answer(record, res, faultResponse(service, fault));
      return;
    }
    if (buckets && !buckets.take(service, operation)) {
      record.throttled = true;
      answer(record, res, faultResponse(service, { kind: "throttle" }));
      return;
    }
    if (fault?.kind === "latency") await new Promise((r) => setTimeout(r, fault.latencyMs ?? 1_000));

    const interceptor = interceptors[`${service}:${operation}`];
    const response = interceptor ? await interceptor(wire, forward) : await forward(wire);
    answer(
      record,
      res,
      dateSkewMs === 0 ? response : { ...response, headers: { ...response.headers, date: skewedDate(dateSkewMs) } },
    );
  }

  function answer(record: CallRecord, res: ServerResponse, response: WireResponse): void {
    record.status = response.status;
    if (response.status >= 300) {
      const code = /<Code>([^<]*)<\/Code>/.exec(response.body.toString())?.[1];
      if (code !== undefined) record.code = code;
    }
    send(res, response);
  }

  function takeFault(service: AwsService, operation: string): FaultRule | undefined {
    const hit = faults.find(
      (f) =>
        f.left > 0 &&
        (f.rule.service === undefined || f.rule.service === service) &&
        (f.rule.operation === undefined || f.rule.operation === operation),
    );
    if (!hit) return undefined;
    hit.left -= 1;
    return hit.rule;
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    calls,
    mutatingCalls: () => calls.filter((c) => c.mutating),
    resetCalls: () => {
      // In place: tests may hold on to `proxy.calls`.
      calls.length = 0;
    },
    inject: (rule) => {
      faults.push({ rule, left: rule.times ?? 1 });
    },
    clearFaults: () => {
      faults = [];
    },
    setRoute53PendingMs: (ms) => {
      route53.pendingMs = ms;
    },
    throttle: (scale) => {
      buckets = scale !== undefined ? new TokenBuckets(scale, now) : undefined;
    },
    buckets: () => buckets?.stats() ?? [],
    setDateSkew: (ms) => {
      dateSkewMs = ms;
    },
    ec2,
    elbv2,
    autoscaling,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive sockets from SDK clients would otherwise hold close() open.
        server.closeAllConnections();
      }),
  };
}

/** An HTTP Date (second resolution, as AWS sends it) `ms` away from now. */
function skewedDate(ms: number): string {
  return new Date(Date.now() + ms).toUTCString();
}

function prefixed(service: AwsService, table: Record<string, Interceptor>): Record<string, Interceptor> {
  return Object.fromEntries(Object.entries(table).map(([op, fn]) => [`${service}:${op}`, fn]));
}

/** The error AWS itself sends for a throttled or failing call, so the SDK parses and retries it as it would in AWS. */
function faultResponse(service: AwsService, fault: FaultRule): WireResponse {
  const after = fault.retryAfterSeconds;
  if (fault.kind === "5xx") {
    return fault.status === 500
      ? awsError(service, 500, "InternalError", "An internal error has occurred", after)
      : awsError(service, 503, "ServiceUnavailable", "Service is unavailable; try again", after);
  }
  if (service === "ec2") return awsError(service, 503, "RequestLimitExceeded", "Request limit exceeded.", after);
  return awsError(service, 400, "Throttling", "Rate exceeded", after);
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function send(res: ServerResponse, answer: WireResponse): void {
  const body = typeof answer.body === "string" ? Buffer.from(answer.body, "utf8") : answer.body;
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(answer.headers)) if (!HOP_BY_HOP.has(k.toLowerCase())) headers[k] = v;
  headers["content-length"] = String(body.length);
  res.writeHead(answer.status, headers);
  res.end(body);
}

/** Sends the request to moto as it came (Host and Authorization included), buffering moto's answer. */
export function forwardTo(target: URL, req: WireRequest): Promise<WireResponse> {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
  if (req.body.length > 0 || req.headers["content-length"] !== undefined) {
    headers["content-length"] = String(req.body.length);
  }
  return new Promise((resolve, reject) => {
    const upstream = request(
      { hostname: target.hostname, port: target.port, method: req.method, path: req.path, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          const out: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = Array.isArray(v) ? v.join(", ") : v;
          }
          resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
        });
      },
    );
    upstream.setTimeout(FORWARD_TIMEOUT_MS, () => upstream.destroy(new Error(`moto did not answer ${req.operation}`)));
    upstream.on("error", reject);
    upstream.end(req.body);
  });
}
