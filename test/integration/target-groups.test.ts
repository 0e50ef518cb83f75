// ELBv2 target groups end to end: the real bundle against moto behind the fidelity proxy, whose target health goes
// initial -> healthy (or unhealthy) and whose deregistered targets drain for a while, as AWS's do.
import {
  DescribeTargetHealthCommand,
  ModifyTargetGroupAttributesCommand,
  type TargetHealthDescription,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { AssociateAddressCommand } from "@aws-sdk/client-ec2";
import { boot as bootInWorld, runOn, stateOf, type Booted } from "../harness/booted";
import type { RunResult } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let vpcId: string;
let zoneId: string;
let groups = 0;

beforeAll(async () => {
  world = await startWorld({ route53PendingMs: 300 });
  ({ vpcId } = await world.createVpc("10.50.0.0/16"));
  zoneId = await world.createHostedZone("tg.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

afterEach(() => {
  world.proxy.clearFaults();
  world.proxy.elbv2.reset();
});

const boot = (userData: string): Promise<Booted> => bootInWorld(world, userData, { vpcId, tags: { Role: "web" } });
const run = (command: string, b: Booted): Promise<RunResult> => runOn(world, command, b);

async function group(
  o: { port?: number; targetType?: "instance" | "ip" } = {},
): Promise<{ name: string; arn: string }> {
  const name = `tg-${++groups}`;
  return { name, arn: await world.createTargetGroup({ name, vpcId, ...o }) };
}

/** The group's targets as moto itself holds them (not through the proxy). */
async function targetsIn(arn: string): Promise<TargetHealthDescription[]> {
  const out = await world.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: arn }));
  return out.TargetHealthDescriptions ?? [];
}

const config = (lines: string[]): string => ["#bootlace", "load_balancer:", ...lines].join("\n");

const healthCalls = () => world.proxy.calls.filter((c) => c.operation === "DescribeTargetHealth");

describe("registering in target groups", () => {
  it("registers by name, waits while the target is initial, and a second run changes nothing", async () => {
    const tg = await group();
    world.proxy.elbv2.setTargetHealth({ targetGroupArn: tg.arn, initialMs: 2500 });
    const b = await boot(config([`  target_groups: [{ name: ${tg.name} }]`, "  wait_healthy: 60"]));
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({
      changes: 1,
      actions: [{ name: "load_balancer", changes: [{ kind: "register", target: `target group ${tg.name}` }] }],
    });
    expect(await targetsIn(tg.arn)).toEqual([
      expect.objectContaining({ Target: expect.objectContaining({ Id: b.instance.instanceId, Port: 80 }) as object }),
    ]);
    // It polled until healthy, saying what the load balancer reported meanwhile.
    expect(healthCalls().length).toBeGreaterThanOrEqual(3);
    expect(result.stderr).toMatch(/initial \(Elb\.(RegistrationInProgress|InitialHealthChecking)/);
    expect(result.stderr).toContain("is healthy");

    world.proxy.resetCalls();
    const second = await run("run", b);
    expect(second.code).toBe(0);
    expect(second.json).toMatchObject({ changes: 0 });
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });

  it("registers the private IP in an ip group found by ARN, on the configured port", async () => {
    const tg = await group({ targetType: "ip", port: 8080 });
    const b = await boot(config([`  target_groups: [{ arn: "${tg.arn}", port: 9000 }]`, "  wait_healthy: 0"]));

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(await targetsIn(tg.arn)).toEqual([
      expect.objectContaining({
        Target: expect.objectContaining({ Id: b.instance.privateIpv4, Port: 9000 }) as object,
      }),
    ]);
  });

  it("fails with the last reason when the target stays unhealthy past wait_healthy, and keeps it for stop", async () => {
    const tg = await group();
    world.proxy.elbv2.setTargetHealth({
      targetGroupArn: tg.arn,
      initialMs: 500,
      then: {
        state: "unhealthy",
        reason: "Target.ResponseCodeMismatch",
        description: "Health checks failed with these codes: [502]",
      },
    });
    const b = await boot(config([`  target_groups: [{ name: ${tg.name} }]`, "  wait_healthy: 4"]));

    const result = await run("run", b);

    expect(result.code).toBe(1);
    const state = await stateOf(b);
    expect(state.run.failed).toEqual(["load_balancer"]);
    expect(state.run.actions.load_balancer?.error).toMatch(
      /not healthy after \d+ s: unhealthy \(Target\.ResponseCodeMismatch: Health checks failed with these codes: \[502\]\)/,
    );
    expect((state.saved.load_balancer as { targets: unknown[] }).targets).toHaveLength(1);
  });

  it("stop deregisters and waits while the target drains", async () => {
    const tg = await group();
    world.proxy.elbv2.setDrainMs(2500, tg.arn);
    const b = await boot(config([`  target_groups: [{ name: ${tg.name} }]`, "  wait_healthy: 10"]));
    expect((await run("run", b)).code).toBe(0);
    world.proxy.resetCalls();

    const stop = await run("stop", b);

    expect(stop.code).toBe(0);
    expect(stop.json).toMatchObject({
      command: "stop",
      changes: 1,
      actions: [
        {
          name: "load_balancer",
          changes: [{ kind: "deregister", detail: expect.stringContaining("drained in") as string }],
        },
      ],
    });
    expect(healthCalls().length).toBeGreaterThanOrEqual(2);
    expect(await targetsIn(tg.arn)).toEqual([]);
    expect((await run("stop", b)).json).toMatchObject({ changes: 0 });
  });

  it("stop stops waiting at the group's deregistration delay", async () => {
    const tg = await group();
    await world.elbv2.send(
      new ModifyTargetGroupAttributesCommand({
        TargetGroupArn: tg.arn,
        Attributes: [{ Key: "deregistration_delay.timeout_seconds", Value: "2" }],
      }),
    );
    world.proxy.elbv2.setDrainMs(60_000, tg.arn);
    const b = await boot(config([`  target_groups: [{ name: ${tg.name} }]`, "  wait_healthy: 0"]));
    expect((await run("run", b)).code).toBe(0);

    const stop = await run("stop", b);

    expect(stop.code).toBe(0);
    expect(stop.stderr).toContain("at most 2 s");
    expect(stop.stderr).toMatch(/still draining after \d+ s; the load balancer finishes it on its own/);
  });

  it("stop leaves the target registered with deregister_on_shutdown: false", async () => {
    const tg = await group();
    const b = await boot(
      config([`  target_groups: [{ name: ${tg.name} }]`, "  wait_healthy: 0", "  deregister_on_shutdown: false"]),
    );
    expect((await run("run", b)).code).toBe(0);
    world.proxy.resetCalls();

    const stop = await run("stop", b);

    expect(stop.code).toBe(0);
    expect(world.proxy.mutatingCalls()).toEqual([]);
    expect(await targetsIn(tg.arn)).toHaveLength(1);
  });

  it("recovers from throttling and 5xx on every ELBv2 call of run and stop", async () => {
    const tg = await group();
    const b = await boot(config([`  target_groups: [{ name: ${tg.name} }]`, "  wait_healthy: 30"]));
    const inject = (operations: string[]) => {
      for (const operation of operations) {
        world.proxy.inject({ service: "elasticloadbalancing", operation, kind: "throttle" });
        world.proxy.inject({ service: "elasticloadbalancing", operation, kind: "5xx" });
      }
    };
    inject(["DescribeTargetGroups", "DescribeTargetHealth", "RegisterTargets"]);
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(0);
    expect(world.proxy.calls.filter((c) => c.injected)).toHaveLength(6);
    inject(["DeregisterTargets", "DescribeTargetGroupAttributes", "DescribeTargetHealth"]);
    world.proxy.resetCalls();

    const stop = await run("stop", b);

    expect(stop.code).toBe(0);
    expect(world.proxy.calls.filter((c) => c.injected)).toHaveLength(6);
    expect(await targetsIn(tg.arn)).toEqual([]);
  });
});

describe("one failed action does not stop the others", () => {
  it("an exhausted Elastic IP pool fails; the target group and a record are still done; exit 1", async () => {
    const tg = await group();
    const taken = await world.allocateAddress({ Pool: "exhausted" });
    const other = await world.launchInstance({ vpcId });
    await world.ec2.send(
      new AssociateAddressCommand({
        AllocationId: taken.allocationId,
        InstanceId: other.instanceId,
      }),
    );
    const b = await boot(
      [
        "#bootlace",
        "elastic_ip: { pool: { tags: { Pool: exhausted } } }",
        "load_balancer:",
        `  target_groups: [{ name: ${tg.name} }]`,
        "  wait_healthy: 10",
        "dns:",
        "  records:",
        "    - { zone: tg.internal, name: 'web-{{instance.id}}.tg.internal', value: private_ipv4 }",
      ].join("\n"),
    );

    const result = await run("run", b);

    expect(result.code).toBe(1);
    expect(result.json).toMatchObject({
      failed: 1,
      actions: expect.arrayContaining([
        expect.objectContaining({ name: "elastic_ip", status: "failed" }),
        expect.objectContaining({ name: "load_balancer", status: "ok" }),
        expect.objectContaining({ name: "dns", status: "ok" }),
      ]) as unknown[],
    });
    expect(await targetsIn(tg.arn)).toHaveLength(1);
    const records = await world.listRecords(zoneId);
    expect(records.find((r) => r.name === `web-${b.instance.instanceId}.tg.internal.`)?.values).toEqual([
      b.instance.privateIpv4,
    ]);
    const state = await stateOf(b);
    expect(state.run.failed).toEqual(["elastic_ip"]);
    expect(state.run.actions.elastic_ip?.error).toContain("no free Elastic IP in pool Pool=exhausted");
  });
});

describe("bad target group configuration is refused with exit 2 and nothing changes", () => {
  it.each([
    [
      "a name that does not exist",
      "  target_groups: [{ name: no-such-group }]",
      /load_balancer\.target_groups\.0\.name: no target group no-such-group/,
    ],
    [
      "an ARN that does not exist",
      "  target_groups: [{ arn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/gone/0123456789abcdef' }]",
      /load_balancer\.target_groups\.0\.arn: no target group arn:aws:elasticloadbalancing:.*\/gone\//,
    ],
  ])("%s", async (_label, line, message) => {
    const b = await boot(config([line]));
    world.proxy.resetCalls();

    const result = await run("run", b);

    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain("nothing was changed");
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});
