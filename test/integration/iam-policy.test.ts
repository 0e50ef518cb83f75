// `bootlace iam-policy` against moto with IAM enforced: the real bundle, authenticated as an IAM user that holds exactly
// the generated policy (served as the instance profile by the IMDS emulator), wires an instance and undoes it; without
// any one of the policy's actions, the run or the stop fails.
//
// moto 5.2.1 checks the Action of each statement but authorises every EC2, ELBv2 and Route 53 call against the
// resource "*", and evaluates no condition it does not know: a statement scoped to an ARN would deny everything. So the
// user holds the generated statements with each Resource widened to "*": this proves the action lists; the resources
// and conditions are checked by unit tests (test/unit/iam.test.ts). The agent talks to moto directly here, because the
// fidelity proxy's own reads (Route 53 batch validation) carry the caller's signature, which moto checks once IAM is on.
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from "@aws-sdk/client-iam";
import { DescribeAddressesCommand } from "@aws-sdk/client-ec2";
import { DescribeTargetHealthCommand } from "@aws-sdk/client-elastic-load-balancing-v2";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { PolicyDocument } from "../../agent/aws/iam";
import { makeRoot, runBootlace, type RunResult } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld, TEST_CREDENTIALS } from "../harness/world";

jest.setTimeout(180_000);

let world: World;
let iam: IAMClient;
let vpcId: string;
let zoneId: string;
let tgArn: string;
let userData: string;
let policy: PolicyDocument;
let users = 0;

/** Every action the configuration below needs, by the phase that needs it. */
const expectedActions = [
  "ec2:DescribeAddresses",
  "ec2:AssociateAddress",
  "elasticloadbalancing:DescribeTargetGroups",
  "elasticloadbalancing:DescribeTargetHealth",
  "elasticloadbalancing:DescribeTargetGroupAttributes",
  "elasticloadbalancing:RegisterTargets",
  "elasticloadbalancing:DeregisterTargets",
  "route53:ListHostedZonesByName",
  "route53:GetHostedZone",
  "route53:ListResourceRecordSets",
  "route53:ChangeResourceRecordSets",
  "route53:GetChange",
];

/** In the policy too, but read only when an address is held by another instance (the handoff), not in this world. */
const handoffActions = ["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces"];

beforeAll(async () => {
  world = await startWorld();
  iam = new IAMClient({ endpoint: world.moto.endpoint, region: world.region, credentials: TEST_CREDENTIALS });
  ({ vpcId } = await world.createVpc("10.60.0.0/16"));
  zoneId = await world.createHostedZone("iam.internal", { privateVpcId: vpcId });
  // A second private zone of the same name, in another VPC: choosing between them takes GetHostedZone.
  await world.createHostedZone("iam.internal", { privateVpcId: (await world.createVpc("10.61.0.0/16")).vpcId });
  tgArn = await world.createTargetGroup({ name: "web-iam", vpcId });
  userData = [
    "#bootlace",
    "elastic_ip: { pool: { tags: { Pool: iam } } }",
    "load_balancer:",
    "  target_groups: [{ name: web-iam }]",
    "  wait_healthy: 30",
    "dns:",
    "  records:",
    "    - { zone: iam.internal, private: true, name: 'pub-{{instance.id}}.iam.internal', value: elastic_ip,",
    "        delete_on_shutdown: true }",
    "    - { zone: iam.internal, private: true, name: 'priv-{{instance.id}}.iam.internal' }",
  ].join("\n");
  const dir = await mkdtemp(join(tmpdir(), "bootlace-iam-"));
  await writeFile(join(dir, "user-data"), userData);
  const printed = await runBootlace(["iam-policy", "--user-data", join(dir, "user-data")], {
    imds: "http://127.0.0.1:9",
    aws: world.moto.endpoint,
    root: await makeRoot(),
  });
  if (printed.code !== 0) throw new Error(`iam-policy failed: ${printed.stderr}`);
  policy = printed.json as PolicyDocument;
});

afterAll(async () => {
  await setAuth("inf").catch(() => undefined);
  iam?.destroy();
  await world?.close();
});

/** moto enforces IAM after N more requests ("0": now), or never ("inf"). */
async function setAuth(count: string): Promise<void> {
  const res = await fetch(`${world.moto.endpoint}/moto-api/reset-auth`, {
    method: "POST",
    body: count,
    headers: { "content-type": "text/plain" },
  });
  if (!res.ok) throw new Error(`reset-auth ${count}: HTTP ${res.status}`);
}

/** What moto can check of a policy: its actions, each statement on any resource (see the note at the top). */
function forMoto(p: PolicyDocument, without?: string): string {
  const statements = p.Statement.map((s) => ({
    Effect: s.Effect,
    Action: s.Action.filter((a) => a !== without),
    Resource: "*",
  })).filter((s) => s.Action.length > 0);
  return JSON.stringify({ Version: p.Version, Statement: statements });
}

async function userWith(document: string): Promise<{ accessKeyId: string; secretAccessKey: string }> {
  const UserName = `bootlace-${++users}`;
  await iam.send(new CreateUserCommand({ UserName }));
  await iam.send(new PutUserPolicyCommand({ UserName, PolicyName: "bootlace", PolicyDocument: document }));
  const key = (await iam.send(new CreateAccessKeyCommand({ UserName }))).AccessKey!;
  return { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey! };
}

interface Wired {
  run: RunResult;
  stop?: RunResult;
  instanceId: string;
  interfaceId?: string;
  allocationId: string;
}

/** A fresh instance (and a free pool address) wired with run, then stop, as the user holding `document`. */
async function wire(document: string): Promise<Wired> {
  const credentials = await userWith(document);
  const { allocationId } = await world.allocateAddress({ Pool: "iam" });
  const instance = await world.launchInstance({ vpcId });
  // No session token: an access key of an IAM user, which moto looks up (a token would make it a role session).
  const imds = await world.startImds({ ...instance, userData, credentials: { ...credentials, sessionToken: "" } });
  const root = await makeRoot();
  const bootlace = (command: string) =>
    runBootlace([command, "--json"], { imds: imds.endpoint, aws: world.moto.endpoint, root });
  await setAuth("0");
  try {
    const run = await bootlace("run");
    const stop = run.code === 0 ? await bootlace("stop") : undefined;
    return {
      run,
      ...(stop && { stop }),
      instanceId: instance.instanceId,
      ...(instance.interfaceId !== undefined && { interfaceId: instance.interfaceId }),
      allocationId,
    };
  } finally {
    await setAuth("inf");
    await imds.close();
  }
}

it("generates the actions this configuration needs, with resources and conditions where AWS allows", () => {
  const actions = [...new Set(policy.Statement.flatMap((s) => s.Action))];
  expect(actions.sort()).toEqual([...expectedActions, ...handoffActions].sort());
  const change = policy.Statement.find((s) => s.Action.includes("route53:ChangeResourceRecordSets"));
  expect(change?.Resource).toEqual(["arn:aws:route53:::hostedzone/*"]);
  expect(change?.Condition?.["ForAllValues:StringLike"]).toEqual({
    "route53:ChangeResourceRecordSetsNormalizedRecordNames": [
      "pub-*.iam.internal",
      "_bootlace-a.pub-*.iam.internal",
      "priv-*.iam.internal",
      "_bootlace-a.priv-*.iam.internal",
    ],
  });
  const register = policy.Statement.find((s) => s.Action.includes("elasticloadbalancing:RegisterTargets"));
  expect(register?.Resource).toEqual(["arn:aws:elasticloadbalancing:*:*:targetgroup/web-iam/*"]);
});

it("the generated policy is enough: run wires the instance and stop undoes what it should", async () => {
  const w = await wire(forMoto(policy));

  expect(w.run.stderr).not.toMatch(/AccessDenied|error/);
  expect(w.run.code).toBe(0);
  expect(w.run.json).toMatchObject({ changes: 4, failed: 0 });
  expect(w.stop?.code).toBe(0);
  expect(w.stop?.json).toMatchObject({ changes: 2, failed: 0 });
  const address = (await world.ec2.send(new DescribeAddressesCommand({ AllocationIds: [w.allocationId] }))).Addresses;
  expect(address?.[0]?.NetworkInterfaceId).toBe(w.interfaceId);
  const records = (await world.listRecords(zoneId)).map((r) => r.name);
  expect(records).toContain(`priv-${w.instanceId}.iam.internal.`);
  expect(records).not.toContain(`pub-${w.instanceId}.iam.internal.`);
  const health = await world.elbv2.send(new DescribeTargetHealthCommand({ TargetGroupArn: tgArn }));
  expect(health.TargetHealthDescriptions?.map((d) => d.Target?.Id)).not.toContain(w.instanceId);
});

it.each(expectedActions)("without %s, the run or the stop fails on it", async (action) => {
  const w = await wire(forMoto(policy, action));

  const failed = [w.run, w.stop].find((r) => r !== undefined && r.code !== 0);
  expect(failed).toBeDefined();
  // The failing call is named, with moto's refusal (ELBv2 and EC2: AccessDenied; Route 53: a bare 403).
  const operation = action.split(":")[1]!;
  expect(failed!.stderr).toMatch(new RegExp(`${operation}[^\\n]*(AccessDenied|not authorized|Unknown)`));
});
