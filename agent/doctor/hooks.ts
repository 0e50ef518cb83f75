// The Auto Scaling lifecycle hooks of this instance's group, as Auto Scaling sees them (DescribeAutoScalingInstances,
// DescribeLifecycleHooks: reads only): each hook with its heartbeat timeout and default result, whether one is holding
// the instance now (Pending:Wait, Terminating:Wait), and what bootlace will do about it under this configuration — a
// hook nobody completes holds every launch or termination for its whole timeout.
import type { LifecycleHook } from "@aws-sdk/client-auto-scaling";
import type { Aws } from "../aws/clients";
import type { Config } from "../config/schema";
import { describeCause } from "../core/errors";
import { LAUNCHING, TERMINATING, membershipOf, type Membership } from "../lifecycle/hooks";
import type { RootFs } from "../root/fs";
import type { CheckResult } from "./check";
import { fail, ok, warn } from "./check";
import { isDenied } from "./permissions";

const WATCH_WANTS = "/etc/systemd/system/multi-user.target.wants/bootlace-watch.service";

/** The lifecycle states in which an action of the transition holds the instance. */
const WAITING: Record<string, readonly string[]> = {
  [LAUNCHING]: ["Pending:Wait", "Warmed:Pending:Wait"],
  [TERMINATING]: ["Terminating:Wait", "Warmed:Terminating:Wait"],
};

export interface HookProbe {
  aws: Aws;
  config: Config;
  root: RootFs;
  instanceId: string;
  /** IMDS's target lifecycle state: present only on a member of an Auto Scaling group. */
  lifecycleState: string | undefined;
}

class Denied extends Error {}

/** A read, with a refusal turned into Denied (naming the IAM action) and anything else left as it is. */
async function reading<T>(iamAction: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (isDenied(error)) throw new Denied(`${iamAction} denied: ${describeCause(error)}`, { cause: error });
    throw error;
  }
}

/** What bootlace will do about one hook under this configuration: ok when it completes it, warn when nobody does. */
function verdict(
  p: HookProbe,
  hook: LifecycleHook,
  watchEnabled: boolean,
): { good: boolean; does: string; fix: string } {
  const a = p.config.autoscaling;
  const nobody = "unless something else completes it";
  if (hook.LifecycleTransition === LAUNCHING) {
    const ownScript = "or complete it from your own boot script";
    if (!a) {
      return {
        good: false,
        does: `bootlace does not complete it (no autoscaling section): ${nobody}, every launch waits for it`,
        fix: `add \`autoscaling: { launch_hook: auto }\` and its permissions (\`bootlace iam-policy\`), ${ownScript}`,
      };
    }
    if (a.launch_hook === "off") {
      return {
        good: false,
        does: `autoscaling.launch_hook is off, so bootlace does not complete it: ${nobody}, every launch waits for it`,
        fix: `autoscaling.launch_hook: auto (or ${hook.LifecycleHookName ?? ""}), ${ownScript}`,
      };
    }
    if (a.launch_hook !== "auto" && a.launch_hook !== hook.LifecycleHookName) {
      return {
        good: false,
        does: `autoscaling.launch_hook names ${a.launch_hook}, so bootlace leaves this one: ${nobody}, every launch waits for it`,
        fix: `autoscaling.launch_hook: auto, ${ownScript}`,
      };
    }
    const failure = a.on_failure === "continue" ? "CONTINUE" : "ABANDON";
    return {
      good: true,
      does: `\`bootlace run\` completes it: heartbeats while its actions run, CONTINUE once every one succeeded, ${failure} (autoscaling.on_failure) when one failed`,
      fix: "",
    };
  }
  const stopPath = "the stop path (deregister, drain, delete records) still runs at shutdown";
  if (!a || a.termination_hook === "off") {
    return {
      good: false,
      does: `${a ? "autoscaling.termination_hook is off" : "no autoscaling section"}, so bootlace does not complete it (${stopPath}): ${nobody}, every termination waits for it`,
      fix: "autoscaling.termination_hook: auto with bootlace-watch.service running, or complete it yourself",
    };
  }
  if (!watchEnabled) {
    return {
      good: false,
      does:
        "only `bootlace watch` sees Terminating:Wait and completes it, and bootlace-watch.service is not enabled: " +
        `nothing drains the instance while the hook holds it, and ${nobody} every termination waits for it`,
      fix: "systemctl enable --now bootlace-watch.service",
    };
  }
  return {
    good: true,
    does: "`bootlace watch` runs the stop path at Terminating:Wait, with heartbeats while the target drains, then CONTINUE",
    fix: "",
  };
}

function describeHook(hook: LifecycleHook): string {
  const transition = hook.LifecycleTransition === LAUNCHING ? "launch" : "termination";
  // AWS's defaults when the hook was put without them.
  const timeout = hook.HeartbeatTimeout ?? 3600;
  const result = hook.DefaultResult ?? "ABANDON";
  return `${transition} hook, heartbeat timeout ${timeout} s, then ${result}`;
}

/** One hook's line: what it is, whether it holds the instance now, and what bootlace will do. */
function hookLine(p: HookProbe, self: Membership, hook: LifecycleHook, watchEnabled: boolean): CheckResult {
  const name = `lifecycle hook ${hook.LifecycleHookName ?? "(unnamed)"}`;
  const { good, does, fix } = verdict(p, hook, watchEnabled);
  const pending = WAITING[hook.LifecycleTransition ?? ""]?.includes(self.state) ?? false;
  const what = `${self.group}'s ${describeHook(hook)}`;
  const cause = pending
    ? `pending: ${p.instanceId} waits in ${self.state} for ${what}; ${does}`
    : `${what} (${p.instanceId} is ${self.state}); ${does}`;
  return good ? ok(name, cause) : warn(name, cause, fix);
}

/**
 * The instance's group and its hooks, one line each. Outside Auto Scaling (no lifecycle state in IMDS, no autoscaling
 * section) it asks nothing. A refused read fails when this configuration's policy grants it (`bootlace iam-policy`
 * has the reads with an autoscaling section), and is only a warning otherwise.
 */
export async function lifecycleHooks(p: HookProbe): Promise<CheckResult[]> {
  const a = p.config.autoscaling;
  if (a === undefined && p.lifecycleState === undefined) return [];
  try {
    const self = (
      await reading("autoscaling:DescribeAutoScalingInstances", () => membershipOf(p.aws, [p.instanceId]))
    ).get(p.instanceId);
    if (!self)
      return [ok("lifecycle hooks", `${p.instanceId} is in no Auto Scaling group (DescribeAutoScalingInstances)`)];
    if (a?.group !== undefined && a.group !== self.group) {
      return [
        fail(
          "lifecycle hooks",
          `${p.instanceId} is in Auto Scaling group ${self.group}, not ${a.group} (autoscaling.group): bootlace completes none of its lifecycle actions`,
          `autoscaling.group: ${self.group}, or launch the instance in ${a.group}`,
        ),
      ];
    }
    const answer = await reading("autoscaling:DescribeLifecycleHooks", () =>
      p.aws.call(
        "autoscaling",
        `group ${self.group}`,
        (sdk) => new sdk.DescribeLifecycleHooksCommand({ AutoScalingGroupName: self.group }),
      ),
    );
    const hooks = (answer.LifecycleHooks ?? []).filter(
      (k) => k.LifecycleTransition === LAUNCHING || k.LifecycleTransition === TERMINATING,
    );
    const lines: CheckResult[] = [];
    const named = a?.launch_hook;
    if (
      named !== undefined &&
      named !== "auto" &&
      named !== "off" &&
      !hooks.some((k) => k.LifecycleTransition === LAUNCHING && k.LifecycleHookName === named)
    ) {
      lines.push(
        fail(
          "lifecycle hooks",
          `group ${self.group} has no launch lifecycle hook named ${named} (autoscaling.launch_hook): a run that finds the instance waiting fails`,
          "name one of the group's launch hooks, or launch_hook: auto",
        ),
      );
    }
    if (hooks.length === 0) {
      lines.push(ok("lifecycle hooks", `group ${self.group} has no lifecycle hook (${p.instanceId} is ${self.state})`));
      return lines;
    }
    const watchEnabled = (await p.root.lstat(WATCH_WANTS)) !== undefined;
    lines.push(...hooks.map((k) => hookLine(p, self, k, watchEnabled)));
    return lines;
  } catch (error) {
    if (!(error instanceof Denied)) throw error;
    const granted = a !== undefined;
    const iamAction = error.message.split(" ")[0]!;
    if (granted) {
      return [
        fail(
          "lifecycle hooks",
          error.message,
          `allow ${iamAction} in the instance role's policy (\`bootlace iam-policy\` prints what this configuration needs)`,
        ),
      ];
    }
    return [
      warn(
        "lifecycle hooks",
        `could not tell whether a lifecycle hook holds this member of an Auto Scaling group: ${error.message} ` +
          "(without an autoscaling section the policy grants no Auto Scaling read)",
        "add an autoscaling section (`bootlace iam-policy` then grants the reads), or look at the group's hooks with `aws autoscaling describe-lifecycle-hooks`",
      ),
    ];
  }
}
