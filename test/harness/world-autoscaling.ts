// Auto Scaling in a test world: groups, members and lifecycle hooks seeded in moto directly (none of it in the
// proxy's call records), and the lifecycle actions moto lacks opened in the fidelity proxy with the same hook's
// settings, so the two cannot disagree.
import {
  AttachInstancesCommand,
  AutoScalingClient,
  CreateAutoScalingGroupCommand,
  PutLifecycleHookCommand,
} from "@aws-sdk/client-auto-scaling";
import { CreateLaunchTemplateCommand, DescribeImagesCommand } from "@aws-sdk/client-ec2";
import type { LifecycleActionOptions, LifecycleResult } from "./aws-proxy-autoscaling";
import type { World } from "./world";
import { TEST_CREDENTIALS } from "./world";

export interface HookSpec {
  group: string;
  name: string;
  transition: "launch" | "terminate";
  heartbeatTimeout: number;
  defaultResult?: LifecycleResult;
}

export interface AutoScalingWorld {
  client: AutoScalingClient;
  /** An empty group (desired 0) in the subnet; instances join with attach(). */
  createGroup(name: string, subnetId: string): Promise<void>;
  /** The instance joins the group (moto tags it aws:autoscaling:groupName) and is InService there. */
  attach(group: string, instanceId: string): Promise<void>;
  putHook(spec: HookSpec): Promise<void>;
  /** Opens the hook's lifecycle action for the instance in the proxy (the instance waits in it). */
  open(spec: HookSpec, instanceId: string, extra?: Partial<LifecycleActionOptions>): void;
  close(): void;
}

export function autoScalingWorld(world: World): AutoScalingWorld {
  const client = new AutoScalingClient({
    endpoint: world.moto.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
  });
  let templates = 0;
  return {
    client,
    async createGroup(name, subnetId) {
      const images = await world.ec2.send(new DescribeImagesCommand({ Owners: ["amazon"], MaxResults: 5 }));
      const template = `bootlace-test-${++templates}-${name}`;
      await world.ec2.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: template,
          LaunchTemplateData: { ImageId: images.Images?.[0]?.ImageId ?? "", InstanceType: "t3.micro" },
        }),
      );
      await client.send(
        new CreateAutoScalingGroupCommand({
          AutoScalingGroupName: name,
          MinSize: 0,
          MaxSize: 10,
          DesiredCapacity: 0,
          LaunchTemplate: { LaunchTemplateName: template },
          VPCZoneIdentifier: subnetId,
        }),
      );
    },
    async attach(group, instanceId) {
      await client.send(new AttachInstancesCommand({ AutoScalingGroupName: group, InstanceIds: [instanceId] }));
    },
    async putHook(spec) {
      await client.send(
        new PutLifecycleHookCommand({
          AutoScalingGroupName: spec.group,
          LifecycleHookName: spec.name,
          LifecycleTransition:
            spec.transition === "launch"
              ? "autoscaling:EC2_INSTANCE_LAUNCHING"
              : "autoscaling:EC2_INSTANCE_TERMINATING",
          HeartbeatTimeout: spec.heartbeatTimeout,
          DefaultResult: spec.defaultResult ?? "ABANDON",
        }),
      );
    },
    open(spec, instanceId, extra = {}) {
      world.proxy.autoscaling.openLifecycleAction({
        instanceId,
        group: spec.group,
        hook: spec.name,
        transition: spec.transition,
        heartbeatTimeoutSeconds: spec.heartbeatTimeout,
        ...(spec.defaultResult && { defaultResult: spec.defaultResult }),
        ...extra,
      });
    },
    close: () => client.destroy(),
  };
}
