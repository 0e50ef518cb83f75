// The contract every action keeps: read the world, compute changes purely, apply them; undo at shutdown.
import type { Aws } from "../aws/clients";
import type { Clock } from "../core/clock";
import type { Config } from "../config/schema";
import type { InstanceFacts } from "../instance/facts";
import type { Tags } from "../instance/tags";
import type { RootFs } from "../root/fs";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";

export type ActionName = "elastic_ip" | "load_balancer" | "dns" | "peers" | "files";

/** One change an action would make (plan) or made (run), in words a person reads. */
export interface Change {
  /** What kind of change: "create", "update", "delete", "associate", "register", "write"... */
  kind: string;
  /** What it is about: "web.example.internal. A", "eipalloc-0abc", "/etc/hosts". */
  target: string;
  /** Details: "10.0.0.5 (was 10.0.0.4)". */
  detail?: string;
}

/** What the actions that ran before (the ones this one depends on) produced, by name. */
export type Upstream = Partial<Record<ActionName, unknown>>;

export interface ActionContext {
  config: Config;
  instance: InstanceFacts;
  /** The instance's tags: IMDS's, else read once from the EC2 API on first use (the same for every action). */
  tags(): Promise<Tags>;
  aws: Aws;
  clock: Clock;
  deadline: Deadline;
  log: Logger;
  /** The filesystem under --root ("/" in production): every read, write and stat of the instance's files. */
  fs: RootFs;
  /** Results of the actions this one depends on (only those that succeeded). */
  upstream: Upstream;
  /** State recorded by the previous run for this action, if any. */
  previous: unknown;
}

export interface Plan<P = unknown> {
  changes: Change[];
  /** Action-specific data carried from plan() to apply(). */
  data: P;
  /** What the action expects to produce, for the plans of actions that depend on it (e.g. the address to claim). */
  output?: unknown;
}

export interface Outcome {
  changes: Change[];
  /** Saved in state.json under the action's name: what stop() will need. */
  state?: unknown;
  /** Handed to dependent actions as upstream[name]. */
  output?: unknown;
  /** Parts that could not be done while the rest was: the action counts as failed, its changes and state are kept. */
  failures?: string[];
  /** One line on what holds now, shown in the result even when nothing changed ("203.0.113.7 (ec2-…)"). */
  summary?: string;
}

/** What the elastic_ip action hands to dependent actions (dns). */
export interface ElasticIpOutput {
  allocationId?: string;
  /** The public address this instance will have; undefined in a plan when a pool address is not chosen yet. */
  publicIp?: string;
  /** Its EC2 public DNS name (ec2-a-b-c-d.REGION.compute.amazonaws.com), when publicIp is known. */
  publicDns?: string;
}

/** One statement of an IAM policy, as `bootlace iam-policy` prints it. */
export interface PolicyStatement {
  Sid?: string;
  Effect: "Allow";
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface Action<P = unknown> {
  name: ActionName;
  /** Whether the configuration asks for this action at all. */
  enabled(config: Config): boolean;
  /** Actions that must finish first in this configuration (e.g. dns after elastic_ip when a record uses it). */
  dependsOn(config: Config): ActionName[];
  /** Reads the world and computes the changes; changes nothing. */
  plan(ctx: ActionContext): Promise<Plan<P>>;
  /** Makes the planned changes (and waits for them as configured). */
  apply(ctx: ActionContext, plan: Plan<P>): Promise<Outcome>;
  /** The least-privilege IAM statements this configuration needs from this action (for `bootlace iam-policy`). */
  permissions?(config: Config): PolicyStatement[];
  /** Undoes at shutdown what should not outlive the instance, from the state the last run saved. */
  stop?(ctx: ActionContext, saved: unknown): Promise<Outcome>;
}
