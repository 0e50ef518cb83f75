// scripts/emulators.ts, bundled as the build does: prints working exports for a seeded instance, honours its
// options, and cleans up on SIGTERM.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { DescribeInstancesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { ChangeResourceRecordSetsCommand, GetChangeCommand, Route53Client } from "@aws-sdk/client-route-53";
import { buildSync } from "esbuild";
import { TEST_CREDENTIALS } from "../../harness/world";

jest.setTimeout(60_000);

const dir = mkdtempSync(join(tmpdir(), "emulators-test-"));
const script = join(dir, "emulators.js");
beforeAll(() => {
  buildSync({
    entryPoints: [resolve(__dirname, "../../../scripts/emulators.ts")],
    bundle: true,
    platform: "node",
    format: "cjs",
    outfile: script,
    logLevel: "silent",
  });
});

function start(args: string[]): { child: ChildProcessWithoutNullStreams; output: Promise<string> } {
  const child = spawn(process.execPath, [script, ...args], { stdio: "pipe" });
  const output = new Promise<string>((done, fail) => {
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => {
      out += s;
      if (out.includes("# ready")) done(out);
    });
    child.once("exit", (code) => fail(new Error(`emulators exited (${code}) before ready: ${out}`)));
  });
  return { child, output };
}

const exited = (child: ChildProcessWithoutNullStreams) =>
  new Promise<number | null>((r) => {
    if (child.exitCode !== null) r(child.exitCode);
    else child.once("exit", (code) => r(code));
  });

it("serves the seeded instance with the given tags and user-data, and cleans up on SIGTERM", async () => {
  const userDataFile = join(dir, "user-data");
  writeFileSync(userDataFile, "#bootlace\nversion: 1\n");
  const { child, output } = start([
    "--tags",
    "Role=db",
    "--tags=Env=ci",
    "--user-data",
    userDataFile,
    "--route53-pending-ms",
    "60000",
  ]);
  try {
    const text = await output;
    const exported: Record<string, string> = {};
    for (const m of text.matchAll(/^export (\w+)=(.*)$/gm)) exported[m[1] ?? ""] = m[2] ?? "";
    expect(Object.keys(exported).sort()).toEqual([
      "AWS_EC2_METADATA_SERVICE_ENDPOINT",
      "AWS_EC2_METADATA_V1_DISABLED",
      "AWS_ENDPOINT_URL",
    ]);
    const imds = exported.AWS_EC2_METADATA_SERVICE_ENDPOINT ?? "";
    const aws = exported.AWS_ENDPOINT_URL ?? "";
    expect([imds, aws].every((u) => u.startsWith("http://127.0.0.1:"))).toBe(true);

    const token = await (
      await fetch(`${imds}/latest/api/token`, {
        method: "PUT",
        headers: { "x-aws-ec2-metadata-token-ttl-seconds": "60" },
      })
    ).text();
    const get = (path: string) =>
      fetch(`${imds}/latest/${path}`, { headers: { "x-aws-ec2-metadata-token": token } }).then((r) => r.text());
    const instanceId = await get("meta-data/instance-id");
    expect(await get("meta-data/tags/instance/Env")).toBe("ci");
    expect(await get("user-data")).toBe("#bootlace\nversion: 1\n");

    const config = { endpoint: aws, region: "us-east-1", credentials: TEST_CREDENTIALS };
    const ec2 = new EC2Client(config);
    const described = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
    expect(described.Reservations?.[0]?.Instances?.[0]?.Tags).toEqual(
      expect.arrayContaining([
        { Key: "Role", Value: "db" },
        { Key: "Env", Value: "ci" },
      ]),
    );
    ec2.destroy();

    const zoneId = /zone\s+example\.internal \(private, ([^)]+)\)/.exec(text)?.[1] ?? "";
    const route53 = new Route53Client({ ...config, maxAttempts: 1 });
    const submitted = await route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: zoneId,
        ChangeBatch: {
          Changes: [
            {
              Action: "CREATE",
              ResourceRecordSet: {
                Name: "t.example.internal",
                Type: "A",
                TTL: 60,
                ResourceRecords: [{ Value: "10.0.0.1" }],
              },
            },
          ],
        },
      }),
    );
    const change = await route53.send(new GetChangeCommand({ Id: submitted.ChangeInfo?.Id ?? "" }));
    expect(change.ChangeInfo?.Status).toBe("PENDING");
    route53.destroy();

    const moto = /moto direct\s+(\S+)/.exec(text)?.[1] ?? "";
    child.kill("SIGTERM");
    expect(await exited(child)).toBe(0);
    for (const endpoint of [imds, aws, moto]) {
      await expect(fetch(endpoint, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    }
  } finally {
    if (child.exitCode === null) child.kill("SIGKILL");
  }
});

it("rejects a bad option with the usage and exit 2", async () => {
  const child = spawn(process.execPath, [script, "--tags", "novalue"], { stdio: "pipe" });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
  expect(await exited(child)).toBe(2);
  expect(stderr).toContain('--tags expects K=V, got "novalue"');
  expect(stderr).toContain("usage: node dist/emulators.js");
});
