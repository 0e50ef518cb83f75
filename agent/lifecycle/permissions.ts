// The IAM statements the lifecycle needs: reading this instance's group and hooks (the hooks to complete them, and
// `bootlace doctor` to say which hooks hold the instance and whether bootlace completes them, so with any autoscaling
// section), and completing and heartbeating its lifecycle actions — scoped to the group (autoscaling.group) where the
// configuration names it, and only when a hook is not off.
import type { PolicyStatement } from "../actions/types";
import type { Config } from "../config/schema";

export function lifecyclePermissions(config: Config): PolicyStatement[] {
  const a = config.autoscaling;
  if (!a) return [];
  // Auto Scaling's Describe* actions do not support resource-level permissions.
  const read: PolicyStatement = {
    Sid: "AutoScalingLifecycleRead",
    Effect: "Allow",
    Action: ["autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks"],
    Resource: "*",
  };
  if (a.launch_hook === "off" && a.termination_hook === "off") return [read];
  return [
    read,
    {
      Sid: "AutoScalingLifecycleActions",
      Effect: "Allow",
      Action: ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
      Resource: `arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/${a.group ?? "*"}`,
    },
  ];
}
