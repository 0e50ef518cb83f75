// `bootlace doctor` end to end: the real bundle against moto behind the fidelity proxy, the IMDS emulator and a stub
// DNS server. Each failure doctor knows is made to happen, and its line is read; a healthy, wired instance shows every
// check ok. doctor makes no changing AWS call (counted by the proxy; its EC2 DryRun requests change nothing) and
// writes no file under --root.
import { createHash } from "node:crypto";
import { lstat, mkdir, readFile, readdir, readlink, symlink, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { ModifyVpcAttributeCommand } from "@aws-sdk/client-ec2";
import { CreateAccessKeyCommand, CreateUserCommand, IAMClient, PutUserPolicyCommand } from "@aws-sdk/client-iam";
import { AssumeRoleCommand, STSClient } from "@aws-sdk/client-sts";
import type { PolicyDocument } from "../../agent/aws/iam";
import type { CheckResult } from "../../agent/doctor/check";
import { startDnsStub, type DnsStub } from "../harness/dns-stub";
import type { ImdsEmulator, ImdsEmulatorOptions, ImdsInstance } from "../harness/imds-emulator";
import { REPO_ROOT, makeRoot, runBootlace, type RunResult } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { TEST_CREDENTIALS, startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let vpcId: string;
let zoneId: string;
let allocationId: string;
let peer: ImdsInstance;
let dns: DnsStub;
/** What the stub resolver answers before Route 53's records: a name → addresses, an in-addr.arpa name → names. */
const overrides = new Map<string, string[]>();
const ptr = new Map<string, string[]>();

beforeAll(async () => {
  world = await startWorld();
  ({ vpcId } = await world.createVpc("10.70.0.0/16"));
  await world.ec2.send(new ModifyVpcAttributeCommand({ VpcId: vpcId, EnableDnsHostnames: { Value: true } }));
  zoneId = await world.createHostedZone("doctor.internal", { privateVpcId: vpcId });
  ({ allocationId } = await world.allocateAddress());
  peer = await world.launchInstance({ vpcId, tags: { Role: "db" } });
  reverse(peer.privateIpv4, peer.hostname!);
  // The VPC's resolver as the stub plays it: what a test says, else the records in Route 53, else the peer's name.
  dns = await startDnsStub(async (name, type) => {
    if (type === "PTR") return ptr.get(name) ?? [];
    const set = overrides.get(name);
    if (set) return set;
    if (name === peer.hostname) return [peer.privateIpv4];
    const records = await world.listRecords(zoneId);
    return records.find((r) => r.type === "A" && r.name === `${name}.`)?.values ?? [];
  });
});

afterAll(async () => {
  await dns?.close();
  await world?.close();
});

function reverse(ip: string, name: string): void {
  ptr.set(`${ip.split(".").reverse().join(".")}.in-addr.arpa`, [name]);
}

const recordName = (i: ImdsInstance) => `web-${i.instanceId}.doctor.internal`;

/** The configuration every instance here gets: the world's Elastic IP, a record, the db peers. */
const config = (): string =>
  [
    "#bootlace",
    `elastic_ip: { allocation_id: ${allocationId} }`,
    "dns:",
    "  records:",
    "    - { zone: doctor.internal, name: 'web-{{instance.id}}.doctor.internal' }",
    "peers:",
    "  db: { tags: { Role: db } }",
  ].join("\n");

interface Booted {
  instance: ImdsInstance;
  imds: ImdsEmulator;
  root: string;
}

/** An instance in the VPC (Role=web), its IMDS serving the configuration, and a root with bootlace's unit enabled. */
async function boot(
  o: { userData?: string; instance?: Partial<ImdsInstance>; imds?: Omit<ImdsEmulatorOptions, "instance"> } = {},
): Promise<Booted> {
  const instance = await world.launchInstance({ vpcId, tags: { Role: "web" } });
  const userData = o.userData ?? config();
  const imds = await world.startImds({ ...instance, userData, ...o.instance }, o.imds);
  const root = await makeRoot();
  await put(
    root,
    "/usr/lib/systemd/system/bootlace.service",
    await readFile(join(REPO_ROOT, "systemd/bootlace.service")),
  );
  await mkdir(join(root, "etc/systemd/system/multi-user.target.wants"), { recursive: true });
  await symlink(
    "/usr/lib/systemd/system/bootlace.service",
    join(root, "etc/systemd/system/multi-user.target.wants/bootlace.service"),
  );
  return { instance, imds, root };
}

async function put(root: string, path: string, content: string | Buffer): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

interface Report {
  ok: number;
  warn: number;
  fail: number;
  checks: CheckResult[];
}

interface Doctored extends RunResult {
  report: Report;
  /** The check of that name; the test fails when doctor printed none. */
  line(name: string): CheckResult;
  /** "status: cause" of that check, to match in one expectation. */
  said(name: string): string;
}

async function doctor(b: Booted, extra: string[] = [], env: Record<string, string> = {}): Promise<Doctored> {
  const result = await runBootlace(["doctor", "--json", ...extra], {
    imds: b.imds.endpoint,
    aws: world.proxy.endpoint,
    root: b.root,
    env: { BOOTLACE_RESOLVER: dns.server, ...env },
  });
  const report = result.json as Report;
  if (!report?.checks) throw new Error(`doctor printed no report: ${result.stdout}\n${result.stderr}`);
  const line = (name: string): CheckResult => {
    const found = report.checks.find((c) => c.name === name);
    if (!found) throw new Error(`no check "${name}" in ${report.checks.map((c) => c.name).join(", ")}`);
    return found;
  };
  return { ...result, report, line, said: (name) => `${line(name).status}: ${line(name).cause}` };
}

/** Every file, folder and link under root, with its content, mode and times: what "writes nothing" compares. */
async function tree(root: string, dir = ""): Promise<string[]> {
  const out: string[] = [];
  for (const name of (await readdir(join(root, dir))).sort()) {
    const path = join(dir, name);
    const st = await lstat(join(root, path));
    const what = st.isSymbolicLink()
      ? `-> ${await readlink(join(root, path))}`
      : st.isDirectory()
        ? "dir"
        : createHash("sha256")
            .update(await readFile(join(root, path)))
            .digest("hex");
    out.push(`${path} ${st.mode.toString(8)} ${st.mtimeMs} ${what}`);
    if (st.isDirectory()) out.push(...(await tree(root, path)));
  }
  return out;
}

describe("a healthy, wired instance", () => {
  it("shows every check ok, makes no changing call and writes nothing", async () => {
    const b = await boot();
    reverse(b.instance.privateIpv4, recordName(b.instance));
    const run = await runBootlace(["run"], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });
    expect(run.code).toBe(0);
    const before = await tree(b.root);
    world.proxy.resetCalls();

    const d = await doctor(b);

    expect(d.report.checks.filter((c) => c.status !== "ok")).toEqual([]);
    expect(d.code).toBe(0);
    expect(d.line(`dns ${recordName(b.instance)}`).cause).toBe(
      `${recordName(b.instance)} → ${b.instance.privateIpv4} → ${recordName(b.instance)}`,
    );
    expect(d.line(`peer db ${peer.hostname!}`).status).toBe("ok");
    expect(d.line("permission ec2:AssociateAddress").cause).toBe("allowed (EC2 DryRun)");
    expect(d.line("last run").cause).toMatch(/exit 0/);
    expect(world.proxy.mutatingCalls()).toEqual([]);
    expect(world.proxy.calls.filter((c) => c.dryRun).map((c) => c.operation)).toContain("AssociateAddress");
    expect(await tree(b.root)).toEqual(before);
  });

  it("prints one line per check, the fix on the same line", async () => {
    const b = await boot();
    b.imds.setTagsEnabled(false);

    const d = await runBootlace(["doctor"], {
      imds: b.imds.endpoint,
      aws: world.proxy.endpoint,
      root: b.root,
      env: { BOOTLACE_RESOLVER: dns.server },
    });

    const lines = d.stdout.trim().split("\n");
    expect(lines).toContain(
      `warn  imds tags: IMDS does not expose this instance's tags (InstanceMetadataTags off): bootlace reads them ` +
        `with ec2:DescribeInstances instead, one more call (and permission) per run — fix: aws ec2 ` +
        `modify-instance-metadata-options --instance-id ${b.instance.instanceId} --instance-metadata-tags enabled ` +
        `(or the same in the launch template)`,
    );
    expect(lines).toContain("ok    vpc dns: " + `${vpcId} has DNS support and DNS hostnames on`);
    expect(lines.at(-1)).toMatch(/^\d+ ok, 1 warn, \d+ fail$/);
  });
});

describe("IMDS", () => {
  it("a token PUT that never answers: the hop limit", async () => {
    const b = await boot();
    b.imds.setTokenReplyLost(true);

    const d = await doctor(b, ["--deadline", "6"]);

    expect(d.code).toBe(1);
    expect(d.said("imds")).toMatch(/^fail: .*reply never came/);
    expect(d.line("imds").fix).toMatch(/--http-put-response-hop-limit 2/);
    expect(d.line("unit").status).toBe("ok");
  });

  it("403: the metadata service is disabled", async () => {
    const b = await boot();
    b.imds.setDisabled(true);

    const d = await doctor(b);

    expect(d.code).toBe(1);
    expect(d.said("imds")).toMatch(/^fail: IMDS answered 403 Forbidden/);
    expect(d.line("imds").fix).toMatch(/--http-endpoint enabled/);
  });

  it("tags not exposed, and the Auto Scaling lifecycle state", async () => {
    const b = await boot({ instance: { lifecycleState: "Standby" }, imds: { tagsEnabled: false } });

    const d = await doctor(b);

    expect(d.line("imds tags").status).toBe("warn");
    expect(d.said("lifecycle")).toMatch(/^warn: Standby: /);
  });
});

describe("credentials and the clock", () => {
  it("no instance profile: no credentials", async () => {
    const b = await boot();
    b.imds.setInstanceProfile(false);

    const d = await doctor(b);

    expect(d.code).toBe(1);
    expect(d.said("credentials")).toMatch(/^fail: no credentials: this instance has no instance profile/);
    expect(d.line("credentials").fix).toMatch(/associate-iam-instance-profile/);
    expect(d.line("permissions, vpc dns, peers").cause).toMatch(/^not checked/);
  });

  it("an instance profile whose credentials IMDS does not serve yet", async () => {
    const b = await boot();
    b.imds.failNext(404, 1000, "meta-data/iam/security-credentials");

    const d = await doctor(b);

    expect(d.said("credentials")).toMatch(
      /^fail: arn:aws:iam::123456789012:instance-profile\/bootlace-test-role is attached, but IMDS serves no credentials/,
    );
    expect(d.line("credentials").fix).toMatch(/^wait a minute and run doctor again/);
  });

  it("credentials of another account", async () => {
    const sts = new STSClient({ endpoint: world.moto.endpoint, region: world.region, credentials: TEST_CREDENTIALS });
    const { Credentials: c } = await sts.send(
      new AssumeRoleCommand({ RoleArn: "arn:aws:iam::210987654321:role/elsewhere", RoleSessionName: "doctor" }),
    );
    sts.destroy();
    const credentials = {
      accessKeyId: c!.AccessKeyId!,
      secretAccessKey: c!.SecretAccessKey!,
      sessionToken: c!.SessionToken!,
    };
    const b = await boot({ instance: { credentials } });

    const d = await doctor(b);

    expect(d.said("credentials")).toMatch(
      /^fail: .* in account 210987654321, but this instance is in account 123456789012/,
    );
  });

  it.each([
    [10 * 60_000, /^fail: this clock is 10 min behind AWS/],
    [-2 * 60_000, /^warn: this clock is 2 min ahead of AWS/],
  ])("AWS's Date %d ms away", async (skew, said) => {
    const b = await boot();
    world.proxy.setDateSkew(skew);
    try {
      const d = await doctor(b);
      expect(d.said("clock")).toMatch(said);
      expect(d.line("clock").fix).toMatch(/chronyc makestep/);
    } finally {
      world.proxy.setDateSkew(0);
    }
  });
});

describe("DNS", () => {
  it("a record that resolves elsewhere", async () => {
    const b = await boot();
    overrides.set(recordName(b.instance), ["10.70.9.9"]);

    const d = await doctor(b);

    expect(d.code).toBe(1);
    expect(d.line(`dns ${recordName(b.instance)}`)).toMatchObject({
      status: "fail",
      cause: `${recordName(b.instance)} resolves to 10.70.9.9 here, not ${b.instance.privateIpv4}`,
    });
  });

  it("a record that resolves, and an address that does not resolve back to it", async () => {
    const b = await boot();
    overrides.set(recordName(b.instance), [b.instance.privateIpv4]);

    const d = await doctor(b);

    expect(d.said(`dns ${recordName(b.instance)}`)).toMatch(
      /^warn: .* resolves back to no name \(ENOTFOUND\): .*pg_hba\.conf/,
    );
  });

  it("refuses a BOOTLACE_RESOLVER that is not an address, with exit 2", async () => {
    const b = await boot();

    const d = await runBootlace(["doctor"], {
      imds: b.imds.endpoint,
      aws: world.proxy.endpoint,
      root: b.root,
      env: { BOOTLACE_RESOLVER: "127.0.0.1:not-a-port" },
    });

    expect(d.code).toBe(2);
    expect(d.stderr).toMatch(/BOOTLACE_RESOLVER: "127\.0\.0\.1:not-a-port" is not ADDRESS\[:PORT\]/);
    expect(d.stdout).toBe("");
  });
});

describe("cloud-init and the unit", () => {
  it("cloud-init 24.1 rewriting /etc/hosts and warning about a #bootlace document", async () => {
    const userData = [
      config(),
      "files:",
      "  - { path: /etc/hosts, block: '{{#peers.db}}{{ip}} db.internal{{/peers.db}}' }",
    ].join("\n");
    const b = await boot({ userData });
    await put(b.root, "/usr/lib/python3/dist-packages/cloudinit/version.py", '__VERSION__ = "24.1.3"\n');
    await put(b.root, "/etc/cloud/cloud.cfg", "manage_etc_hosts: true\n");

    const d = await doctor(b);

    expect(d.said("cloud-init hosts")).toMatch(/^warn: .*manage_etc_hosts is true \(\/etc\/cloud\/cloud\.cfg\)/);
    expect(d.said("cloud-init user-data")).toMatch(
      /^warn: cloud-init 24\.1\.3 has no handler for user-data \(#bootlace\)/,
    );
  });

  it("an older cloud-init says nothing about the same user-data", async () => {
    const b = await boot();
    await put(b.root, "/usr/lib/python3/dist-packages/cloudinit/version.py", '__VERSION__ = "22.4.2"\n');

    const d = await doctor(b);

    expect(d.line("cloud-init user-data").status).toBe("ok");
  });

  it("a unit that is installed but not enabled", async () => {
    const b = await boot();
    await unlink(join(b.root, "etc/systemd/system/multi-user.target.wants/bootlace.service"));

    const d = await doctor(b);

    expect(d.line("unit")).toMatchObject({ status: "fail", fix: "systemctl enable bootlace.service" });
  });
});

describe("permissions, with moto enforcing IAM", () => {
  let iam: IAMClient;

  beforeAll(() => {
    iam = new IAMClient({ endpoint: world.moto.endpoint, region: world.region, credentials: TEST_CREDENTIALS });
  });

  afterAll(async () => {
    await setAuth("inf");
    iam.destroy();
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

  it("names the action the role's policy does not allow", async () => {
    const dir = await makeRoot();
    await writeFile(join(dir, "user-data"), config());
    const printed = await runBootlace(["iam-policy", "--user-data", join(dir, "user-data")], {
      imds: "http://127.0.0.1:9",
      aws: world.proxy.endpoint,
      root: dir,
    });
    const policy = printed.json as PolicyDocument;
    // moto checks each statement's actions against the resource "*" (see iam-policy.test.ts).
    const statements = policy.Statement.map((s) => ({
      Effect: s.Effect,
      Action: s.Action.filter((a) => a !== "ec2:AssociateAddress"),
      Resource: "*",
    })).filter((s) => s.Action.length > 0);
    await iam.send(new CreateUserCommand({ UserName: "doctor" }));
    await iam.send(
      new PutUserPolicyCommand({
        UserName: "doctor",
        PolicyName: "bootlace",
        PolicyDocument: JSON.stringify({ Version: policy.Version, Statement: statements }),
      }),
    );
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: "doctor" }))).AccessKey!;
    // No session token: an IAM user's access key, which moto looks up.
    const credentials = { accessKeyId: key.AccessKeyId!, secretAccessKey: key.SecretAccessKey!, sessionToken: "" };
    const b = await boot({ instance: { credentials } });
    world.proxy.resetCalls();
    await setAuth("0");
    let d: Doctored;
    try {
      d = await doctor(b);
    } finally {
      await setAuth("inf");
    }

    expect(d.code).toBe(1);
    expect(d.said("permission ec2:AssociateAddress")).toMatch(/^fail: denied: .*AccessDenied/);
    expect(d.line("permission ec2:AssociateAddress").fix).toMatch(/^allow ec2:AssociateAddress in the instance role/);
    expect(d.line("permission ec2:DescribeAddresses").status).toBe("ok");
    expect(d.line("permission route53:ListHostedZonesByName").status).toBe("ok");
    expect(d.line("credentials").status).toBe("ok");
    expect(world.proxy.mutatingCalls()).toEqual([]);
  });
});
