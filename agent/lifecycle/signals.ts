// What IMDS says about the instance's place in its lifecycle: the Auto Scaling target lifecycle state, whether it is a
// spot instance, a spot interruption notice and a rebalance recommendation. Read through bootlace's own IMDS client
// (instance/imds.ts); each is absent (404) when it does not apply, and anything else malformed is reported as garbage.
import { MetadataUnavailableError } from "../core/errors";
import type { MetadataReader } from "../instance/imds";

export const LIFECYCLE_STATE_PATH = "meta-data/autoscaling/target-lifecycle-state";
export const INSTANCE_LIFE_CYCLE_PATH = "meta-data/instance-life-cycle";
export const SPOT_ACTION_PATH = "meta-data/spot/instance-action";
export const REBALANCE_PATH = "meta-data/events/recommendations/rebalance";

/** InService, Standby, Detached, Terminated, Warmed:Stopped, Warmed:Running, Warmed:Hibernated, Warmed:Terminated. */
const LIFECYCLE_STATE = /^[A-Za-z]+(?::[A-Za-z]+)*$/;

export interface SpotNotice {
  action: "terminate" | "stop" | "hibernate";
  /** When EC2 acts, epoch ms. */
  time: number;
}

export interface RebalanceNotice {
  /** When EC2 emitted the recommendation, epoch ms. */
  noticeTime: number;
}

function garbage(path: string, value: string, expected: string): MetadataUnavailableError {
  return new MetadataUnavailableError(
    `IMDS ${path} returned ${JSON.stringify(value.slice(0, 200))}; expected ${expected}`,
  );
}

/** The Auto Scaling target lifecycle state; undefined when the instance is not in an Auto Scaling group. */
export async function readLifecycleState(imds: MetadataReader): Promise<string | undefined> {
  const text = (await imds.getText(LIFECYCLE_STATE_PATH))?.trim();
  if (text === undefined) return undefined;
  if (!LIFECYCLE_STATE.test(text)) throw garbage(LIFECYCLE_STATE_PATH, text, "a lifecycle state like InService");
  return text;
}

/** Whether EC2 says this is a spot instance (meta-data/instance-life-cycle: spot, on-demand or scheduled). */
export async function readIsSpot(imds: MetadataReader): Promise<boolean> {
  return (await imds.getText(INSTANCE_LIFE_CYCLE_PATH))?.trim() === "spot";
}

function jsonObject(path: string, text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw garbage(path, text, "a JSON object");
}

function timeField(path: string, doc: Record<string, unknown>, name: string, text: string): number {
  const value = doc[name];
  const ms = typeof value === "string" ? Date.parse(value) : NaN;
  if (Number.isNaN(ms)) throw garbage(path, text, `a JSON object with an ISO 8601 "${name}"`);
  return ms;
}

/** The spot interruption notice, once EC2 has marked the instance ({"action": "terminate", "time": "…Z"}). */
export async function readSpotNotice(imds: MetadataReader): Promise<SpotNotice | undefined> {
  const text = (await imds.getText(SPOT_ACTION_PATH))?.trim();
  if (text === undefined || text === "") return undefined;
  const doc = jsonObject(SPOT_ACTION_PATH, text);
  const action = doc.action;
  if (action !== "terminate" && action !== "stop" && action !== "hibernate") {
    throw garbage(SPOT_ACTION_PATH, text, 'an "action" of terminate, stop or hibernate');
  }
  return { action, time: timeField(SPOT_ACTION_PATH, doc, "time", text) };
}

/** The rebalance recommendation, once EC2 has emitted one ({"noticeTime": "…Z"}). */
export async function readRebalance(imds: MetadataReader): Promise<RebalanceNotice | undefined> {
  const text = (await imds.getText(REBALANCE_PATH))?.trim();
  if (text === undefined || text === "") return undefined;
  return { noticeTime: timeField(REBALANCE_PATH, jsonObject(REBALANCE_PATH, text), "noticeTime", text) };
}

/** Warmed:Stopped, Warmed:Running, Warmed:Hibernated (and Warmed:Pending while a hook holds it). */
export function isWarmed(state: string | undefined): boolean {
  return state?.startsWith("Warmed:") ?? false;
}
