// Auto Scaling lifecycle actions as AWS runs them and moto 5.2.1 does not: moto keeps groups, instances and hooks but
// every instance is InService, and it has no CompleteLifecycleAction or RecordLifecycleActionHeartbeat (HTTP 500). A
// test opens a lifecycle action for an instance (as Auto Scaling does when a hook's transition starts); the proxy then
// reports the wait state in DescribeAutoScalingInstances, answers CompleteLifecycleAction and heartbeats as AWS does
// (a token per action; "No active Lifecycle Action found" while none is open; the hook's default result once the
// heartbeat timeout passes), and records every result and heartbeat.
import { randomUUID } from "node:crypto";
import { awsError, xmlEscape, type Interceptor, type WireRequest, type WireResponse } from "./aws-wire";

type Forward = (req: WireRequest) => Promise<WireResponse>;

export type LifecycleResult = "CONTINUE" | "ABANDON";

export interface LifecycleActionOptions {
  instanceId: string;
  group: string;
  hook: string;
  transition: "launch" | "terminate";
  /** As the hook was put into moto (the proxy cannot read it from there). */
  heartbeatTimeoutSeconds: number;
  defaultResult?: LifecycleResult;
  /** A launch into the warm pool: the wait state is Warmed:Pending:Wait and CONTINUE leads to this state. */
  warmedTo?: "Warmed:Stopped" | "Warmed:Running" | "Warmed:Hibernated";
  /** For this long the instance is Pending (Terminating) and no action is open yet: what an early caller meets. */
  opensAfterMs?: number;
}

export interface LifecycleResultRecord {
  instanceId: string;
  group: string;
  hook: string;
  result: LifecycleResult;
  /** completed: by CompleteLifecycleAction; timeout: the heartbeat timeout passed and the default result applied. */
  how: "completed" | "timeout";
  at: number;
  /** The state the instance went to. */
  state: string;
}

export interface HeartbeatRecord {
  instanceId: string;
  hook: string;
  at: number;
}

export interface AutoScalingControls {
  /** From now on DescribeAutoScalingInstances reports this lifecycle state for the instance. */
  setLifecycleState(instanceId: string, state: string): void;
  /** Opens a lifecycle action for the instance, as Auto Scaling does when the hook's transition starts. */
  openLifecycleAction(o: LifecycleActionOptions): void;
  /** How each action ended, in order. */
  results: LifecycleResultRecord[];
  heartbeats: HeartbeatRecord[];
  /** Answers to CompleteLifecycleAction that were "No active Lifecycle Action found". */
  noActiveAnswers: number;
  reset(): void;
}

interface OpenAction {
  o: LifecycleActionOptions;
  token: string;
  opensAt: number;
  lastBeat: number;
  /** AWS keeps an instance waiting at most 100 heartbeat timeouts or 48 hours, whichever is less. */
  globalEnd: number;
}

const NS = "http://autoscaling.amazonaws.com/doc/2011-01-01/";

export class AutoScalingFidelity implements AutoScalingControls {
  results: LifecycleResultRecord[] = [];
  heartbeats: HeartbeatRecord[] = [];
  noActiveAnswers = 0;
  private readonly states = new Map<string, string>();
  private actions: OpenAction[] = [];

  constructor(private readonly now: () => number) {}

  setLifecycleState(instanceId: string, state: string): void {
    this.states.set(instanceId, state);
  }

  openLifecycleAction(o: LifecycleActionOptions): void {
    const now = this.now();
    const opensAt = now + (o.opensAfterMs ?? 0);
    const timeoutMs = o.heartbeatTimeoutSeconds * 1000;
    this.actions.push({
      o,
      token: randomUUID(),
      opensAt,
      lastBeat: opensAt,
      globalEnd: opensAt + Math.min(100 * timeoutMs, 48 * 3600 * 1000),
    });
    this.states.set(o.instanceId, this.waitState(o, opensAt > now ? "before" : "wait"));
  }

  reset(): void {
    this.states.clear();
    this.actions = [];
    this.results = [];
    this.heartbeats = [];
    this.noActiveAnswers = 0;
  }

  interceptors(): Record<string, Interceptor> {
    return {
      CompleteLifecycleAction: (req) => Promise.resolve(this.complete(req)),
      RecordLifecycleActionHeartbeat: (req) => Promise.resolve(this.heartbeat(req)),
      DescribeAutoScalingInstances: (req, forward) => this.describeInstances(req, forward),
    };
  }

  private waitState(o: LifecycleActionOptions, phase: "before" | "wait"): string {
    const base = o.transition === "launch" ? "Pending" : "Terminating";
    const warmed = o.warmedTo !== undefined ? "Warmed:" : "";
    return phase === "before" ? `${warmed}${base}` : `${warmed}${base}:Wait`;
  }

  /** Opens actions whose time has come and ends those whose heartbeat timeout passed (their default result). */
  private settle(): void {
    const now = this.now();
    for (const a of [...this.actions]) {
      if (now < a.opensAt) continue;
      this.states.set(a.o.instanceId, this.waitState(a.o, "wait"));
      const timeoutMs = a.o.heartbeatTimeoutSeconds * 1000;
      if (now >= Math.min(a.lastBeat + timeoutMs, a.globalEnd)) {
        this.end(a, a.o.defaultResult ?? "ABANDON", "timeout", Math.min(a.lastBeat + timeoutMs, a.globalEnd));
      }
    }
  }

  private end(a: OpenAction, result: LifecycleResult, how: "completed" | "timeout", at: number): void {
    this.actions = this.actions.filter((x) => x !== a);
    const { o } = a;
    // Another hook of the same transition still open keeps the instance waiting.
    const others = this.actions.some((x) => x.o.instanceId === o.instanceId && x.o.transition === o.transition);
    let state = this.states.get(o.instanceId) ?? "";
    if (!others) {
      if (o.transition === "terminate") state = "Terminated";
      else if (result === "ABANDON") state = "Terminating";
      else state = o.warmedTo ?? "InService";
      this.states.set(o.instanceId, state);
    }
    this.results.push({ instanceId: o.instanceId, group: o.group, hook: o.hook, result, how, at, state });
  }

  /** The open action a request names (by instance id or token), or the error AWS answers. */
  private find(params: URLSearchParams): OpenAction | WireResponse {
    this.settle();
    const group = params.get("AutoScalingGroupName");
    const hook = params.get("LifecycleHookName");
    const instanceId = params.get("InstanceId");
    const token = params.get("LifecycleActionToken");
    if (!group || !hook) {
      return awsError("autoscaling", 400, "ValidationError", "AutoScalingGroupName and LifecycleHookName are required");
    }
    if (!instanceId && !token) {
      return awsError(
        "autoscaling",
        400,
        "ValidationError",
        "Either InstanceId or LifecycleActionToken must be specified",
      );
    }
    const now = this.now();
    const found = this.actions.find(
      (a) =>
        now >= a.opensAt &&
        a.o.group === group &&
        a.o.hook === hook &&
        (token ? a.token === token : a.o.instanceId === instanceId),
    );
    if (found) return found;
    return awsError(
      "autoscaling",
      400,
      "ValidationError",
      token
        ? `No active Lifecycle Action found with token ${token}`
        : `No active Lifecycle Action found with instance ID ${instanceId}`,
    );
  }

  private complete(req: WireRequest): WireResponse {
    const params = paramsOf(req);
    const result = params.get("LifecycleActionResult");
    if (result !== "CONTINUE" && result !== "ABANDON") {
      return awsError(
        "autoscaling",
        400,
        "ValidationError",
        `1 validation error detected: Value '${result ?? ""}' at 'lifecycleActionResult' failed to satisfy constraint: Member must be CONTINUE or ABANDON`,
      );
    }
    const found = this.find(params);
    if (!isAction(found)) {
      this.noActiveAnswers++;
      return found;
    }
    this.end(found, result, "completed", this.now());
    return ok("CompleteLifecycleAction");
  }

  private heartbeat(req: WireRequest): WireResponse {
    const found = this.find(paramsOf(req));
    if (!isAction(found)) return found;
    found.lastBeat = this.now();
    this.heartbeats.push({ instanceId: found.o.instanceId, hook: found.o.hook, at: found.lastBeat });
    return ok("RecordLifecycleActionHeartbeat");
  }

  private async describeInstances(req: WireRequest, forward: Forward): Promise<WireResponse> {
    const res = await forward(req);
    if (res.status !== 200) return res;
    this.settle();
    const body = res.body.toString().replace(/<member>([\s\S]*?)<\/member>/g, (member, inner: string) => {
      const id = /<InstanceId>([^<]*)<\/InstanceId>/.exec(inner)?.[1];
      const state = id !== undefined ? this.states.get(id) : undefined;
      if (state === undefined) return member;
      return `<member>${inner.replace(/<LifecycleState>[^<]*<\/LifecycleState>/, `<LifecycleState>${xmlEscape(state)}</LifecycleState>`)}</member>`;
    });
    return { ...res, body };
  }
}

function isAction(x: OpenAction | WireResponse): x is OpenAction {
  return "token" in x;
}

function paramsOf(req: WireRequest): URLSearchParams {
  const [, query = ""] = req.path.split("?", 2);
  const params = new URLSearchParams(req.body.toString("utf8"));
  for (const [k, v] of new URLSearchParams(query)) if (!params.has(k)) params.set(k, v);
  return params;
}

function ok(operation: string): WireResponse {
  return {
    status: 200,
    headers: { "content-type": "text/xml" },
    body:
      `<?xml version="1.0" encoding="UTF-8"?>\n<${operation}Response xmlns="${NS}"><${operation}Result/>` +
      `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></${operation}Response>`,
  };
}
