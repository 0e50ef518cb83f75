import {
  DescribeTargetGroupsCommand,
  DescribeTargetHealthCommand,
  ElasticLoadBalancingV2Client,
  RegisterTargetsCommand,
  type TargetGroup,
  type TargetHealthDescription,
} from "@aws-sdk/client-elastic-load-balancing-v2";
import { mockClient } from "aws-sdk-client-mock";
import {
  describeHealth,
  healthVerdict,
  isRegistered,
  targetFor,
  targetGroupsAction,
} from "../../agent/actions/target-groups";
import type { Aws } from "../../agent/aws/clients";
import { ConfigError } from "../../agent/core/errors";
import { instance, testAws, testContext } from "../support/context";

const arn = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/web/0123456789abcdef";
const group = (over: Partial<TargetGroup> = {}): TargetGroup => ({
  TargetGroupArn: arn,
  TargetGroupName: "web",
  Port: 80,
  VpcId: instance.vpcId,
  TargetType: "instance",
  ...over,
});
const health = (State: string, Reason?: string, Description?: string): TargetHealthDescription => ({
  Target: { Id: instance.id, Port: 80 },
  TargetHealth: {
    State: State as "healthy",
    ...(Reason && { Reason: Reason as "Elb.InternalError" }),
    ...(Description && { Description }),
  },
});

describe("targetFor", () => {
  it("is the instance id in an instance group, on the group's port unless configured", () => {
    expect(targetFor(group(), instance, { name: "web" }, "t")).toEqual({ arn, name: "web", id: instance.id, port: 80 });
    expect(targetFor(group(), instance, { name: "web", port: 8080 }, "t").port).toBe(8080);
  });

  it("is the private IP in an ip group, with AvailabilityZone all outside the group's VPC", () => {
    expect(targetFor(group({ TargetType: "ip" }), instance, { name: "web" }, "t")).toMatchObject({
      id: instance.privateIpv4,
    });
    expect(targetFor(group({ TargetType: "ip", VpcId: "vpc-0peer" }), instance, { name: "web" }, "t")).toMatchObject({
      availabilityZone: "all",
    });
  });

  it("refuses lambda groups and instance groups of another VPC, naming the key", () => {
    expect(() => targetFor(group({ TargetType: "lambda" }), instance, { name: "web" }, "lb.0")).toThrow(
      new ConfigError(
        "target group web has target type lambda; bootlace registers instance and ip targets",
        undefined,
        "lb.0.name",
      ),
    );
    expect(() => targetFor(group({ VpcId: "vpc-0other" }), instance, { name: "web" }, "lb.0")).toThrow(
      /must share the VPC/,
    );
  });
});

describe("health", () => {
  it("counts a target as registered unless AWS says NotRegistered or it is draining", () => {
    expect(isRegistered(health("initial", "Elb.RegistrationInProgress"))).toBe(true);
    expect(isRegistered(health("unhealthy", "Target.Timeout"))).toBe(true);
    expect(isRegistered(health("unused", "Target.NotRegistered"))).toBe(false);
    expect(isRegistered(health("draining", "Target.DeregistrationInProgress"))).toBe(false);
    expect(isRegistered(undefined)).toBe(false);
  });

  it("waits through initial and unhealthy, fails at once on what waiting cannot fix", () => {
    expect(healthVerdict(health("healthy"))).toEqual({ op: "healthy" });
    expect(healthVerdict(health("initial", "Elb.InitialHealthChecking"))).toEqual({ op: "wait" });
    expect(healthVerdict(health("unhealthy", "Target.Timeout"))).toEqual({ op: "wait" });
    expect(
      healthVerdict(health("unused", "Target.NotInUse", "Target group is not configured to receive traffic")),
    ).toEqual({
      op: "fail",
      reason:
        "unused (Target.NotInUse: Target group is not configured to receive traffic): it will not become healthy by waiting",
    });
    expect(healthVerdict(health("unavailable", "Target.HealthCheckDisabled"))).toEqual({ op: "healthy" });
  });

  it("describes state, reason and description", () => {
    expect(describeHealth(health("unhealthy", "Target.ResponseCodeMismatch", "codes: [502]"))).toBe(
      "unhealthy (Target.ResponseCodeMismatch: codes: [502])",
    );
    expect(describeHealth(health("healthy"))).toBe("healthy");
  });
});

describe("load_balancer action against a mocked ELBv2", () => {
  const elb = mockClient(ElasticLoadBalancingV2Client);
  beforeEach(() => elb.reset());

  function context(config: unknown) {
    const aws: Aws = testAws({ elbv2: true });
    return testContext({ load_balancer: config }, { aws });
  }

  it("registers, then polls sparsely until healthy: the first look within a second, then less and less often", async () => {
    elb.on(DescribeTargetGroupsCommand).resolves({ TargetGroups: [group()] });
    elb
      .on(DescribeTargetHealthCommand)
      .resolvesOnce({ TargetHealthDescriptions: [health("unused", "Target.NotRegistered")] })
      .resolvesOnce({ TargetHealthDescriptions: [health("initial", "Elb.RegistrationInProgress")] })
      .resolvesOnce({ TargetHealthDescriptions: [health("initial", "Elb.InitialHealthChecking")] })
      .resolvesOnce({ TargetHealthDescriptions: [health("unhealthy", "Target.Timeout")] })
      .resolves({ TargetHealthDescriptions: [health("healthy")] });
    elb.on(RegisterTargetsCommand).resolves({});
    const ctx = context({ target_groups: [{ name: "web" }], wait_healthy: 120 });

    const plan = await targetGroupsAction.plan(ctx);
    const outcome = await targetGroupsAction.apply(ctx, plan);

    expect(plan.changes).toEqual([{ kind: "register", target: "target group web", detail: `${instance.id} port 80` }]);
    expect(elb.commandCalls(RegisterTargetsCommand)[0]!.args[0].input).toEqual({
      TargetGroupArn: arn,
      Targets: [{ Id: instance.id, Port: 80 }],
    });
    expect(outcome.failures).toBeUndefined();
    expect(outcome.state).toMatchObject({ deregisterOnShutdown: true, targets: [{ id: instance.id }] });
    // A wait before each of the four looks after registering, each at most 1 s × 1.6^n (jittered below that).
    expect(ctx.clock.sleeps).toHaveLength(4);
    ctx.clock.sleeps.forEach((ms, n) => expect(ms).toBeLessThanOrEqual(1000 * 1.6 ** n));
    expect(ctx.clock.sleeps[0]).toBeGreaterThanOrEqual(500);
  });

  it("polls a target that stays initial for two minutes about a dozen times, never more than 20 s apart", async () => {
    elb.on(DescribeTargetGroupsCommand).resolves({ TargetGroups: [group()] });
    const ctx = context({ target_groups: [{ name: "web" }], wait_healthy: 300 });
    const healthyAt = ctx.clock.now() + 120_000;
    elb
      .on(DescribeTargetHealthCommand)
      .resolvesOnce({ TargetHealthDescriptions: [health("unused", "Target.NotRegistered")] })
      .callsFake(() => ({
        TargetHealthDescriptions: [
          ctx.clock.now() >= healthyAt ? health("healthy") : health("initial", "Elb.InitialHealthChecking"),
        ],
      }));
    elb.on(RegisterTargetsCommand).resolves({});

    const outcome = await targetGroupsAction.apply(ctx, await targetGroupsAction.plan(ctx));

    expect(outcome.failures).toBeUndefined();
    const polls = elb.commandCalls(DescribeTargetHealthCommand).length - 1;
    // Waits of 1 s × 1.6^n, at most 20 s, each jittered to between half and all of that: 11 to 16 looks in 120 s.
    expect(polls).toBeGreaterThanOrEqual(11);
    expect(polls).toBeLessThanOrEqual(16);
    expect(Math.max(...ctx.clock.sleeps)).toBeLessThanOrEqual(20_000);
    expect(ctx.clock.now() - healthyAt).toBeLessThanOrEqual(20_000);
  });

  it("fails with the last reason when the target is still unhealthy at wait_healthy", async () => {
    elb.on(DescribeTargetGroupsCommand).resolves({ TargetGroups: [group()] });
    elb.on(DescribeTargetHealthCommand).resolves({
      TargetHealthDescriptions: [health("unhealthy", "Target.FailedHealthChecks", "Health checks failed")],
    });
    const ctx = context({ target_groups: [{ name: "web" }], wait_healthy: 30 });

    const outcome = await targetGroupsAction.apply(ctx, await targetGroupsAction.plan(ctx));

    expect(elb.commandCalls(RegisterTargetsCommand)).toHaveLength(0);
    expect(outcome.failures).toEqual([
      `${instance.id} port 80 in web not healthy after 30 s: unhealthy (Target.FailedHealthChecks: Health checks failed)`,
    ]);
  });

  it("turns a group that does not exist into a configuration error naming the key", async () => {
    elb
      .on(DescribeTargetGroupsCommand)
      .rejects(
        Object.assign(new Error("One or more target groups not found"), { name: "TargetGroupNotFoundException" }),
      );
    const error = await targetGroupsAction
      .plan(context({ target_groups: [{ name: "gone" }] }))
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe("load_balancer.target_groups.0.name: no target group gone in us-east-1");
  });

  it("asks for Deregister and the delay attribute only when stop deregisters", () => {
    const permissions = (config: object) =>
      targetGroupsAction.permissions!(testContext({ load_balancer: config }).config).flatMap((s) => s.Action);
    expect(permissions({ target_groups: [{ arn }] })).toContain("elasticloadbalancing:DeregisterTargets");
    expect(permissions({ target_groups: [{ arn }], deregister_on_shutdown: false })).toEqual([
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:RegisterTargets",
    ]);
    const [, register] = targetGroupsAction.permissions!(
      testContext({ load_balancer: { target_groups: [{ arn }] } }).config,
    );
    expect(register?.Resource).toEqual([arn]);
  });
});
