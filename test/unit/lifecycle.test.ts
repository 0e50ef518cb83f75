import {
  AutoScalingClient,
  CompleteLifecycleActionCommand,
  DescribeAutoScalingInstancesCommand,
  DescribeLifecycleHooksCommand,
} from "@aws-sdk/client-auto-scaling";
import { mockClient } from "aws-sdk-client-mock";
import { issueErrors } from "../../agent/config/issues";
import { toPlain } from "../../agent/config/merge";
import { configSchema } from "../../agent/config/schema";
import { parseYamlSource } from "../../agent/config/sources";
import { MetadataUnavailableError } from "../../agent/core/errors";
import { silentLogger } from "../../agent/core/log";
import { leavingReason } from "../../agent/lifecycle/handoff";
import type { HookContext } from "../../agent/lifecycle/hooks";
import { completeHooks, heartbeatIntervalMs, pendingHooks } from "../../agent/lifecycle/hooks";
import { alreadyLeft, stopBounds } from "../../agent/lifecycle/leave";
import { deferredFiles, phaseFor, prepareConfig } from "../../agent/lifecycle/phase";
import { readLifecycleState, readRebalance, readSpotNotice } from "../../agent/lifecycle/signals";
import type { Memory } from "../../agent/lifecycle/watcher";
import { react } from "../../agent/lifecycle/watcher";
import type { StateFile } from "../../agent/root/state";
import type { World } from "../../agent/wiring/procedure";
import { instance, testAws } from "../support/context";
import { fakeClock } from "../support/fake-clock";

const parse = (raw: unknown) => configSchema.parse(raw);

const config = parse({
  elastic_ip: { pool: { tags: { Pool: "web" } } },
  dns: { records: [{ zone: "a.internal", name: "x.a.internal" }] },
  peers: { db: { tags: { Role: "db" } } },
  files: [
    { path: "/etc/app/node.conf", block: "id={{instance.id}} ip={{instance.private_ipv4}}\n" },
    { path: "/etc/hosts", block: "{{#peers.db}}{{ip}} db\n{{/peers.db}}" },
    { path: "/etc/app/public", block: "{{instance.public_ipv4}}\n" },
    { path: "/etc/app/whole", template: "/etc/bootlace/app.mustache" },
  ],
});

describe("the warm pool phase", () => {
  it("prepares in a Warmed:* state with warm_pool auto (the default), wires otherwise", () => {
    expect(phaseFor(config, "Warmed:Stopped")).toBe("prepared");
    expect(phaseFor(config, "Warmed:Running")).toBe("prepared");
    expect(phaseFor(config, "InService")).toBe("wired");
    expect(phaseFor(config, undefined)).toBe("wired");
    expect(phaseFor(parse({ autoscaling: { warm_pool: "off" } }), "Warmed:Stopped")).toBe("wired");
  });

  it("prepares only files that name no peer and no address; whole-file templates wait", () => {
    const prepared = prepareConfig(config);
    expect(prepared.elastic_ip).toBeUndefined();
    expect(prepared.dns).toBeUndefined();
    expect(prepared.peers).toBeUndefined();
    expect(prepared.files?.map((f) => f.path)).toEqual(["/etc/app/node.conf"]);
    expect(deferredFiles(config)).toEqual(["/etc/hosts", "/etc/app/public", "/etc/app/whole"]);
  });

  it("a file whose command names the peers' or the changing addresses' variables, or uses them in an argv, waits", () => {
    const withCommands = parse({
      peers: { db: { tags: { Role: "db" } } },
      files: [
        { path: "/etc/a", block: "a\n", on_change: "systemctl reload a" },
        { path: "/etc/b", block: "b\n", on_change: 'echo "$BOOTLACE_PEERS_DB" > /run/db' },
        { path: "/etc/c", block: "c\n", check: ["/bin/t", "{{#peers.db}}{{ip}}{{/peers.db}}"] },
        { path: "/etc/d", block: "d\n", on_change: ["/bin/t", "$BOOTLACE_ELASTIC_IP"] },
        { path: "/etc/e", block: "e\n", check: ["/bin/t", "{{instance.public_ipv4}}", "{{staged}}"] },
      ],
    });
    expect(prepareConfig(withCommands).files?.map((f) => f.path)).toEqual(["/etc/a"]);
  });
});

const reader = (items: Record<string, string>) => ({
  getText: (path: string) => Promise.resolve(items[path]),
  getBytes: (path: string) => Promise.resolve(items[path] === undefined ? undefined : Buffer.from(items[path])),
});

describe("the IMDS signals", () => {
  it("reads the lifecycle state, and nothing outside a group", async () => {
    expect(
      await readLifecycleState(reader({ "meta-data/autoscaling/target-lifecycle-state": "Warmed:Stopped\n" })),
    ).toBe("Warmed:Stopped");
    expect(await readLifecycleState(reader({}))).toBeUndefined();
    await expect(
      readLifecycleState(reader({ "meta-data/autoscaling/target-lifecycle-state": "<html>" })),
    ).rejects.toThrow(MetadataUnavailableError);
  });

  it("reads the spot notice and the rebalance recommendation, refusing what is not AWS's shape", async () => {
    const spot = await readSpotNotice(
      reader({ "meta-data/spot/instance-action": '{"action": "terminate", "time": "2017-09-18T08:22:00Z"}' }),
    );
    expect(spot).toEqual({ action: "terminate", time: Date.parse("2017-09-18T08:22:00Z") });
    expect(await readSpotNotice(reader({}))).toBeUndefined();
    await expect(
      readSpotNotice(reader({ "meta-data/spot/instance-action": '{"action": "reboot", "time": "x"}' })),
    ).rejects.toThrow(/action/);
    expect(
      await readRebalance(
        reader({ "meta-data/events/recommendations/rebalance": '{"noticeTime": "2020-10-27T08:22:00Z"}' }),
      ),
    ).toEqual({ noticeTime: Date.parse("2020-10-27T08:22:00Z") });
  });
});

const world = (raw: unknown): World => ({
  instance,
  loaded: { config: parse(raw), sources: [] },
  lifecycleState: "InService",
  spot: true,
});

const memory = (over: Partial<Memory> = {}): Memory => ({ left: new Set(), logged: new Set(), ...over });

describe("what watch does about a reading", () => {
  const spot = { action: "terminate" as const, time: Date.parse("2026-01-01T00:02:00Z") };

  it("a spot notice takes the stop path within the notice's time (spot.on_interruption: stop, the default)", () => {
    expect(react(world({}), { spot }, memory())).toEqual([
      {
        kind: "leave",
        options: {
          reason: "spot-interruption",
          detail: expect.stringContaining("terminate") as string,
          actBy: spot.time,
        },
      },
    ]);
    expect(react(world({}), { spot }, memory({ left: new Set(["spot-interruption"]) }))).toEqual([]);
    expect(react(world({ spot: { on_interruption: "off" } }), { spot }, memory())).toEqual([
      expect.objectContaining({ kind: "log", key: "spot-interruption" }),
    ]);
  });

  it("a termination first; a rebalance is logged (default) or stops; InService wires a prepared instance", () => {
    const rebalance = { noticeTime: 0 };
    expect(react(world({}), { lifecycleState: "Terminated", rebalance }, memory()).map((r) => r.kind)).toEqual([
      "leave",
      "log",
    ]);
    expect(react(world({ spot: { on_rebalance: "stop" } }), { rebalance }, memory())).toEqual([
      { kind: "leave", options: expect.objectContaining({ reason: "rebalance" }) as object },
    ]);
    expect(react(world({ spot: { on_rebalance: "off" } }), { rebalance }, memory())).toEqual([]);
    expect(react(world({}), { lifecycleState: "InService" }, memory({ phase: "prepared" }))).toEqual([
      { kind: "wire" },
    ]);
    expect(react(world({}), { lifecycleState: "InService" }, memory({ phase: "wired" }))).toEqual([]);
  });
});

describe("the stop path's bounds", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");

  it("ends a little before the notice's time, and stops draining early enough for the hook and the record", () => {
    const b = stopBounds(now, 300, now + 120_000);
    expect(b.seconds).toBe(118);
    expect(b.drainBy).toBe(now + 108_000);
    // A short notice: half of it for the drain.
    expect(stopBounds(now, 300, now + 12_000)).toEqual({ seconds: 10, drainBy: now + 5_000 });
    // No notice: the deadline.
    expect(stopBounds(now, 60)).toEqual({ seconds: 60, drainBy: now + 50_000 });
  });

  it("is done when it finished cleanly since the last run, not before it or after a failure", () => {
    const left = {
      reason: "spot-interruption" as const,
      started: "2026-01-01T00:05:00.000Z",
      finished: "x",
      exit_code: 0,
    };
    const run = { started: "2026-01-01T00:00:00.000Z" } as NonNullable<StateFile["run"]>;
    const state = (over: Partial<StateFile>): StateFile => ({ version: 1, instance_id: "i-1", saved: {}, ...over });
    expect(alreadyLeft(state({ run, left }))).toEqual(left);
    expect(alreadyLeft(state({ run, left: { ...left, exit_code: 1 } }))).toBeUndefined();
    expect(alreadyLeft(state({ run: { ...run, started: "2026-01-01T00:06:00.000Z" }, left }))).toBeUndefined();
    expect(alreadyLeft(state({ run }))).toBeUndefined();
  });
});

describe("who is leaving (the Elastic IP handoff)", () => {
  it("an instance stopping, shutting down or gone, or not InService in our own group", () => {
    expect(leavingReason({ id: "i-1", state: "stopping" }, undefined)).toBe("it is stopping");
    expect(leavingReason({ id: "i-1", state: "shutting-down" }, "web")).toBe("it is shutting-down");
    expect(leavingReason({ id: "i-1" }, undefined)).toBe("EC2 no longer knows it");
    expect(leavingReason({ id: "i-1", state: "running", group: "web", groupState: "Terminating:Wait" }, "web")).toBe(
      "it is Terminating:Wait in Auto Scaling group web",
    );
  });

  it("not an InService member, a member of another group, or a stopped instance outside Auto Scaling", () => {
    expect(
      leavingReason({ id: "i-1", state: "running", group: "web", groupState: "InService" }, "web"),
    ).toBeUndefined();
    expect(
      leavingReason({ id: "i-1", state: "running", group: "other", groupState: "Terminating:Wait" }, "web"),
    ).toBeUndefined();
    expect(leavingReason({ id: "i-1", state: "stopped" }, undefined)).toBeUndefined();
  });
});

describe("lifecycle hooks", () => {
  const asg = mockClient(AutoScalingClient);
  afterEach(() => asg.reset());

  const context = (raw: unknown = { autoscaling: {} }): HookContext => {
    const clock = fakeClock();
    return {
      aws: testAws({ autoscaling: true }),
      clock,
      deadline: { at: clock.now() + 300_000, signal: new AbortController().signal },
      log: silentLogger,
      instanceId: instance.id,
      config: parse(raw),
    };
  };
  const member = (state: string) =>
    asg.on(DescribeAutoScalingInstancesCommand).resolves({
      AutoScalingInstances: [{ InstanceId: instance.id, AutoScalingGroupName: "web", LifecycleState: state } as never],
    });
  const hooks = () =>
    asg.on(DescribeLifecycleHooksCommand).resolves({
      LifecycleHooks: [
        {
          LifecycleHookName: "launch",
          LifecycleTransition: "autoscaling:EC2_INSTANCE_LAUNCHING",
          HeartbeatTimeout: 90,
        },
        { LifecycleHookName: "drain", LifecycleTransition: "autoscaling:EC2_INSTANCE_TERMINATING" },
      ],
    });
  const noActive = Object.assign(new Error(`No active Lifecycle Action found with instance ID ${instance.id}`), {
    name: "ValidationError",
  });

  it("finds the launch hook of a Pending:Wait instance's group, and none once it is InService", async () => {
    member("Pending:Wait");
    hooks();
    expect(await pendingHooks(context(), "launch")).toEqual({
      membership: { group: "web", state: "Pending:Wait" },
      hooks: [{ group: "web", name: "launch", heartbeatTimeout: 90 }],
    });
    member("InService");
    expect(await pendingHooks(context(), "launch")).toEqual({
      none: "its lifecycle state is InService: no launch action is waiting",
    });
  });

  it("refuses a group other than autoscaling.group, and a hook name the group does not have", async () => {
    member("Pending:Wait");
    hooks();
    await expect(pendingHooks(context({ autoscaling: { group: "db" } }), "launch")).rejects.toThrow(
      /in Auto Scaling group web, not db/,
    );
    await expect(pendingHooks(context({ autoscaling: { launch_hook: "ready" } }), "launch")).rejects.toThrow(
      /no launch lifecycle hook named ready/,
    );
  });

  it("heartbeats every third of the shortest timeout, at least a second apart", () => {
    expect(heartbeatIntervalMs([{ group: "g", name: "a", heartbeatTimeout: 90 }])).toBe(30_000);
    expect(heartbeatIntervalMs([{ group: "g", name: "a", heartbeatTimeout: 1 }])).toBe(1000);
  });

  it("retries 'No active Lifecycle Action found' while the instance still waits, then completes", async () => {
    member("Pending");
    asg.on(CompleteLifecycleActionCommand).rejectsOnce(noActive).rejectsOnce(noActive).resolves({});
    const [record] = await completeHooks(
      context(),
      [{ group: "web", name: "launch", heartbeatTimeout: 90 }],
      "launch",
      "CONTINUE",
    );
    expect(record).toEqual({ group: "web", hook: "launch", result: "CONTINUE", heartbeats: 0, attempts: 3 });
  });

  it("gives up at once when the action is over (the instance no longer waits), saying so", async () => {
    member("InService");
    asg.on(CompleteLifecycleActionCommand).rejects(noActive);
    const [record] = await completeHooks(
      context(),
      [{ group: "web", name: "launch", heartbeatTimeout: 90 }],
      "launch",
      "ABANDON",
    );
    expect(record).toMatchObject({ attempts: 1, error: expect.stringContaining("InService already") as string });
    expect(record?.result).toBeUndefined();
  });
});

describe("the configuration of the lifecycle", () => {
  function messages(yaml: string): string[] {
    const tree = parseYamlSource("f.yaml", yaml).document?.tree;
    if (!tree) throw new Error("the fixture does not parse");
    const parsed = configSchema.safeParse(toPlain(tree), { reportInput: true });
    return (parsed.error?.issues ?? []).flatMap((issue) => issueErrors(issue, tree)).map((e) => e.message);
  }

  it("refuses bad values at their line and key path", () => {
    const errors = messages(
      "autoscaling:\n  on_failure: retry\n  launch_hook: 'my hook'\nspot:\n  on_rebalance: drain\nelastic_ip:\n  allocation_id: eipalloc-0abc1234\n  handoff: -1\nwatch:\n  notice_interval: 0\n",
    );
    expect(errors.sort()).toEqual([
      "f.yaml, line 10: watch.notice_interval: expected number to be >=1, got 0",
      'f.yaml, line 2: autoscaling.on_failure: expected "abandon" or "continue", got "retry"',
      'f.yaml, line 3: autoscaling.launch_hook: expected a lifecycle hook name (letters, digits, -, _, /), got "my hook"',
      'f.yaml, line 5: spot.on_rebalance: expected "stop" or "log" or "off", got "drain"',
      "f.yaml, line 8: elastic_ip.handoff: expected number to be >=0, got -1",
    ]);
  });

  it("takes a hook name for launch_hook", () => {
    expect(parse({ autoscaling: { launch_hook: "bootlace-ready" } }).autoscaling?.launch_hook).toBe("bootlace-ready");
  });
});
