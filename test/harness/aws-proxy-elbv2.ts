// ELBv2 target health as AWS reports it and moto 5.2.1 does not (reference, sections 3 and 6): a registered target is
// `initial` for a while, then healthy or unhealthy as the test says; a deregistered one is `draining` for a while; a
// target that is not registered is `unused`. Registration itself stays moto's: every call is forwarded, so moto still
// validates (and, with IAM enforced, authorises) it, and only the health it reports is rewritten.
import { randomUUID } from "node:crypto";
import { XMLParser } from "fast-xml-parser";
import { xmlEscape, type Interceptor, type WireRequest, type WireResponse } from "./aws-wire";

type Forward = (req: WireRequest) => Promise<WireResponse>;

export interface HealthOutcome {
  state: "healthy" | "unhealthy" | "unused" | "unavailable";
  reason?: string;
  description?: string;
}

export interface HealthRule {
  /** Applies to this group only (default: every group). */
  targetGroupArn?: string;
  /** Applies to this target id only (instance id or IP; default: every target). */
  targetId?: string;
  /** How long a target stays `initial` after RegisterTargets; default 0. */
  initialMs?: number;
  /** What it reports after that; default healthy. */
  then?: HealthOutcome;
}

export interface Elbv2Controls {
  /** From now on, targets matching the rule report this health (the latest matching rule wins). */
  setTargetHealth(rule: HealthRule): void;
  /** How long a deregistered target stays `draining` (per group, or every group); default 0. */
  setDrainMs(ms: number, targetGroupArn?: string): void;
  /** Back to moto's own behaviour: healthy at once, no draining. */
  reset(): void;
}

interface Description {
  id: string;
  port?: string;
  az?: string;
  healthCheckPort?: string;
  state: string;
  reason?: string;
  description?: string;
}

interface DescriptionXml {
  Target?: { Id?: string; Port?: string; AvailabilityZone?: string };
  HealthCheckPort?: string;
  TargetHealth?: { State?: string; Reason?: string; Description?: string };
}

const NS = "http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/";
const parser = new XMLParser({
  ignoreAttributes: true,
  removeNSPrefix: true,
  parseTagValue: false,
  isArray: (tag) => tag === "member",
});

const key = (arn: string, id: string): string => `${arn}|${id}`;

export class Elbv2Fidelity implements Elbv2Controls {
  private rules: HealthRule[] = [];
  private drainRules: { ms: number; targetGroupArn?: string }[] = [];
  /** When each target was registered through the proxy, by group|id. */
  private readonly registered = new Map<string, number>();
  /** Until when each deregistered target drains, by group|id, with its port. */
  private readonly draining = new Map<string, { until: number; port?: string }>();

  constructor(private readonly now: () => number) {}

  setTargetHealth(rule: HealthRule): void {
    this.rules.unshift(rule);
  }

  setDrainMs(ms: number, targetGroupArn?: string): void {
    this.drainRules.unshift({ ms, ...(targetGroupArn !== undefined && { targetGroupArn }) });
  }

  reset(): void {
    this.rules = [];
    this.drainRules = [];
  }

  interceptors(): Record<string, Interceptor> {
    return {
      RegisterTargets: (req, forward) => this.register(req, forward),
      DeregisterTargets: (req, forward) => this.deregister(req, forward),
      DescribeTargetHealth: (req, forward) => this.health(req, forward),
    };
  }

  private async register(req: WireRequest, forward: Forward): Promise<WireResponse> {
    const res = await forward(req);
    if (res.status !== 200) return res;
    const { arn, targets } = targetsOf(req);
    for (const t of targets) {
      this.registered.set(key(arn, t.id), this.now());
      this.draining.delete(key(arn, t.id));
    }
    return res;
  }

  private async deregister(req: WireRequest, forward: Forward): Promise<WireResponse> {
    const res = await forward(req);
    if (res.status !== 200) return res;
    const { arn, targets } = targetsOf(req);
    const ms = this.drainRules.find((r) => r.targetGroupArn === undefined || r.targetGroupArn === arn)?.ms ?? 0;
    for (const t of targets) {
      this.registered.delete(key(arn, t.id));
      if (ms > 0) this.draining.set(key(arn, t.id), { until: this.now() + ms, ...(t.port && { port: t.port }) });
    }
    return res;
  }

  private async health(req: WireRequest, forward: Forward): Promise<WireResponse> {
    const res = await forward(req);
    if (res.status !== 200) return res;
    const { arn, targets } = targetsOf(req);
    const doc = parser.parse(res.body.toString("utf8")) as {
      DescribeTargetHealthResponse?: {
        DescribeTargetHealthResult?: { TargetHealthDescriptions?: { member?: DescriptionXml[] } };
      };
    };
    const listed = doc.DescribeTargetHealthResponse?.DescribeTargetHealthResult?.TargetHealthDescriptions?.member ?? [];
    const out = listed.map((d) => this.rewrite(arn, fromXml(d)));
    if (targets.length === 0) {
      // Listing the whole group: AWS includes the targets still draining, which moto has already forgotten.
      for (const [k, d] of this.draining) {
        const [group, id = ""] = k.split("|");
        if (group === arn && d.until > this.now() && !out.some((o) => o.id === id)) {
          out.push(this.rewrite(arn, { id, ...(d.port && { port: d.port }), state: "unused" }));
        }
      }
    }
    return { ...res, body: toXml(out) };
  }

  private rewrite(arn: string, d: Description): Description {
    const k = key(arn, d.id);
    const drain = this.draining.get(k);
    if (drain && drain.until > this.now()) {
      return {
        ...d,
        state: "draining",
        reason: "Target.DeregistrationInProgress",
        description: "Target deregistration is in progress",
      };
    }
    if (drain) this.draining.delete(k);
    if (d.reason === "Target.NotRegistered") {
      return { ...d, state: "unused", description: "Target is not registered to the target group" };
    }
    const since = this.registered.get(k);
    if (since === undefined || d.state !== "healthy") return d;
    const rule = this.rules.find(
      (r) =>
        (r.targetGroupArn === undefined || r.targetGroupArn === arn) &&
        (r.targetId === undefined || r.targetId === d.id),
    );
    if (!rule) return d;
    const elapsed = this.now() - since;
    const initialMs = rule.initialMs ?? 0;
    if (elapsed < initialMs) {
      return elapsed < initialMs / 2
        ? {
            ...d,
            state: "initial",
            reason: "Elb.RegistrationInProgress",
            description: "Target registration is in progress",
          }
        : {
            ...d,
            state: "initial",
            reason: "Elb.InitialHealthChecking",
            description: "Initial health checks in progress",
          };
    }
    const then = rule.then ?? { state: "healthy" };
    const { reason: _r, description: _d, ...rest } = d;
    return { ...rest, ...then };
  }
}

/** TargetGroupArn and Targets.member.N.{Id,Port} of a query-protocol request. */
function targetsOf(req: WireRequest): { arn: string; targets: { id: string; port?: string }[] } {
  const params = new URLSearchParams(req.body.toString("utf8"));
  const targets: { id: string; port?: string }[] = [];
  for (let n = 1; params.has(`Targets.member.${n}.Id`); n++) {
    const port = params.get(`Targets.member.${n}.Port`);
    targets.push({ id: params.get(`Targets.member.${n}.Id`) ?? "", ...(port !== null && { port }) });
  }
  return { arn: params.get("TargetGroupArn") ?? "", targets };
}

function fromXml(d: DescriptionXml): Description {
  return {
    id: d.Target?.Id ?? "",
    ...(d.Target?.Port !== undefined && { port: d.Target.Port }),
    ...(d.Target?.AvailabilityZone !== undefined && { az: d.Target.AvailabilityZone }),
    ...(d.HealthCheckPort !== undefined && { healthCheckPort: d.HealthCheckPort }),
    state: d.TargetHealth?.State ?? "unavailable",
    ...(d.TargetHealth?.Reason !== undefined && { reason: d.TargetHealth.Reason }),
    ...(d.TargetHealth?.Description !== undefined && { description: d.TargetHealth.Description }),
  };
}

const element = (name: string, value: string | undefined): string =>
  value === undefined ? "" : `<${name}>${xmlEscape(value)}</${name}>`;

function toXml(descriptions: Description[]): string {
  const members = descriptions
    .map(
      (d) =>
        `<member>${element("HealthCheckPort", d.healthCheckPort)}` +
        `<TargetHealth>${element("State", d.state)}${element("Reason", d.reason)}${element("Description", d.description)}</TargetHealth>` +
        `<Target>${element("Id", d.id)}${element("Port", d.port)}${element("AvailabilityZone", d.az)}</Target></member>`,
    )
    .join("");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<DescribeTargetHealthResponse xmlns="${NS}"><DescribeTargetHealthResult>` +
    `<TargetHealthDescriptions>${members}</TargetHealthDescriptions></DescribeTargetHealthResult>` +
    `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></DescribeTargetHealthResponse>`
  );
}
