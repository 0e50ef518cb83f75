// The proxy's Auto Scaling layer answers lifecycle actions as AWS does, with the SDK parsing its answers: the wait
// state, completion by instance id, "No active Lifecycle Action found", heartbeats and the heartbeat timeout.
import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  RecordLifecycleActionHeartbeatCommand,
} from "@aws-sdk/client-auto-scaling";
import { serviceOf } from "../../harness/aws-wire";
import { startWorld, TEST_CREDENTIALS, type World } from "../../harness/world";
import type { AutoScalingWorld, HookSpec } from "../../harness/world-autoscaling";
import { autoScalingWorld } from "../../harness/world-autoscaling";

jest.setTimeout(60_000);

let world: World;
let asg: AutoScalingWorld;
let client: AutoScalingClient;
let subnetId: string;
let groups = 0;

beforeAll(async () => {
  world = await startWorld();
  asg = autoScalingWorld(world);
  client = new AutoScalingClient({
    endpoint: world.proxy.endpoint,
    region: world.region,
    credentials: TEST_CREDENTIALS,
    maxAttempts: 1,
  });
  ({ subnetId } = await world.createVpc("10.90.0.0/16"));
});
afterAll(async () => {
  client?.destroy();
  asg?.close();
  await world?.close();
});
afterEach(() => world.proxy.autoscaling.reset());

async function member(heartbeatTimeout: number): Promise<{ id: string; hook: HookSpec }> {
  const group = `g-${++groups}`;
  await asg.createGroup(group, subnetId);
  const hook: HookSpec = { group, name: "launch", transition: "launch", heartbeatTimeout, defaultResult: "ABANDON" };
  await asg.putHook(hook);
  const { instanceId } = await world.launchInstance({ subnetId });
  await asg.attach(group, instanceId);
  return { id: instanceId, hook };
}

const stateOf = async (id: string) =>
  (await client.send(new DescribeAutoScalingInstancesCommand({ InstanceIds: [id] }))).AutoScalingInstances?.[0]
    ?.LifecycleState;

const complete = (hook: HookSpec, id: string) =>
  client.send(
    new CompleteLifecycleActionCommand({
      AutoScalingGroupName: hook.group,
      LifecycleHookName: hook.name,
      InstanceId: id,
      LifecycleActionResult: "CONTINUE",
    }),
  );

it("classifies Auto Scaling calls by their credential scope", () => {
  const auth = "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/autoscaling/aws4_request, SignedHeaders=host";
  expect(serviceOf({ authorization: auth }, "/")).toBe("autoscaling");
});

it("reports the wait state, completes by instance id, then answers 'No active Lifecycle Action found'", async () => {
  const { id, hook } = await member(60);
  expect(await stateOf(id)).toBe("InService");
  asg.open(hook, id);
  expect(await stateOf(id)).toBe("Pending:Wait");

  await complete(hook, id);

  expect(await stateOf(id)).toBe("InService");
  expect(world.proxy.autoscaling.results).toEqual([
    expect.objectContaining({
      instanceId: id,
      hook: "launch",
      result: "CONTINUE",
      how: "completed",
      state: "InService",
    }),
  ]);
  await expect(complete(hook, id)).rejects.toMatchObject({
    name: "ValidationError",
    message: `No active Lifecycle Action found with instance ID ${id}`,
  });
});

it("keeps an action alive with heartbeats; without one, the heartbeat timeout applies the default result", async () => {
  const { id, hook } = await member(2);
  asg.open(hook, id);
  // Three heartbeats 0.8 s apart: 2.4 s in Pending:Wait, more than the 2 s timeout allows without them.
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 800));
    await client.send(
      new RecordLifecycleActionHeartbeatCommand({
        AutoScalingGroupName: hook.group,
        LifecycleHookName: hook.name,
        InstanceId: id,
      }),
    );
  }
  expect(await stateOf(id)).toBe("Pending:Wait");
  expect(world.proxy.autoscaling.heartbeats).toHaveLength(3);

  await new Promise((r) => setTimeout(r, 2500));

  expect(await stateOf(id)).toBe("Terminating");
  expect(world.proxy.autoscaling.results).toEqual([expect.objectContaining({ result: "ABANDON", how: "timeout" })]);
  await expect(complete(hook, id)).rejects.toMatchObject({ name: "ValidationError" });
});

it("an action that opens late is Pending first, and not found until it opens", async () => {
  const { id, hook } = await member(60);
  asg.open(hook, id, { opensAfterMs: 800 });
  expect(await stateOf(id)).toBe("Pending");
  await expect(complete(hook, id)).rejects.toMatchObject({ name: "ValidationError" });

  await new Promise((r) => setTimeout(r, 900));

  await complete(hook, id);
  expect(world.proxy.autoscaling.results).toEqual([expect.objectContaining({ result: "CONTINUE" })]);
});
