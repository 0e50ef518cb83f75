// The IAM statements the lifecycle needs: reading this instance's group and hooks, and completing and heartbeating
// its lifecycle actions — the latter scoped to the group (autoscaling.group) where the configuration names it.
import type { PolicyStatement } from "../actions/types";
import type { Config } from "../config/schema";

export function lifecyclePermissions(config: Config): PolicyStatement[] {
  const a = config.autoscaling;
  if (!a || (a.launch_hook === "off" && a.termination_hook === "off")) return [];
  return [
    // Auto Scaling's Describe* actions do not support resource-level permissions.
    {
      Sid: "AutoScalingLifecycleRead",
      Effect: "Allow",
      Action: ["autoscaling:DescribeAutoScalingInstances", "autoscaling:DescribeLifecycleHooks"],
      Resource: "*",
    },
    {
      Sid: "AutoScalingLifecycleActions",
      Effect: "Allow",
      Action: ["autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"],
      Resource: `arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/${a.group ?? "*"}`,
    },
  ];
}
