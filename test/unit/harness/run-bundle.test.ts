// runBootlace gives the bundle only what an EC2 instance would have (endpoints, no credentials, no region), refuses
// anything but loopback endpoints, parses JSON output and kills a run that hangs. A stand-in "node" records what
// the bundle would have been given, so these tests do not need a build.
import { chmodSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BUNDLE, TEST_CACHE_DIR, makeRoot, runBootlace } from "../../harness/run-bundle";

const dir = mkdtempSync(join(tmpdir(), "run-bundle-test-"));
const recorder = join(dir, "record.js");
writeFileSync(
  recorder,
  `let stdin = "";
process.stdin.setEncoding("utf8").on("data", (s) => (stdin += s)).on("end", () => {
  if (process.argv.includes("hang")) return setInterval(() => {}, 1000);
  process.stdout.write(JSON.stringify({ argv: process.argv.slice(2), env: process.env, stdin, cwd: process.cwd() }));
  process.stderr.write("logs go here\\n");
  process.exitCode = process.argv.includes("fail") ? 3 : 0;
});
`,
);
// Stands in for node: same interpreter, but runs the recorder and passes the bundle path and arguments along.
const fakeNode = join(dir, "node");
writeFileSync(fakeNode, `#!/bin/sh\nexec "${process.execPath}" "${recorder}" "$@"\n`);
chmodSync(fakeNode, 0o755);

const endpoints = { imds: "http://127.0.0.1:8111", aws: "http://127.0.0.1:5000" };

interface Recorded {
  argv: string[];
  env: Record<string, string>;
  stdin: string;
  cwd: string;
}

it("makeRoot creates the directories bootlace writes under its root", async () => {
  const root = await makeRoot();
  for (const d of ["etc/bootlace", "var/lib/bootlace", "run"]) expect(existsSync(join(root, d))).toBe(true);
});

it("runs the bundle with --root and a minimal, credential-free environment", async () => {
  process.env.AWS_ACCESS_KEY_ID = "AKIASHOULDNOTLEAK";
  process.env.AWS_REGION = "ap-south-1";
  const root = await makeRoot();
  try {
    const result = await runBootlace(["plan", "--json"], { ...endpoints, root, node: fakeNode, env: { EXTRA: "1" } });
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("logs go here\n");
    const seen = result.json as Recorded;
    expect(seen.argv).toEqual([BUNDLE, "plan", "--json", "--root", root]);
    const fromShell = new Set(["PWD", "SHLVL", "_"]); // added by the stand-in's /bin/sh, not by runBootlace
    expect(
      Object.keys(seen.env)
        .filter((k) => !fromShell.has(k))
        .sort(),
    ).toEqual([
      "AWS_CONFIG_FILE",
      "AWS_EC2_METADATA_SERVICE_ENDPOINT",
      "AWS_EC2_METADATA_V1_DISABLED",
      "AWS_ENDPOINT_URL",
      "AWS_SHARED_CREDENTIALS_FILE",
      "BOOTLACE_CACHE_DIR",
      "EXTRA",
      "HOME",
      "PATH",
    ]);
    expect(seen.env).toMatchObject({
      AWS_EC2_METADATA_SERVICE_ENDPOINT: endpoints.imds,
      AWS_ENDPOINT_URL: endpoints.aws,
      AWS_EC2_METADATA_V1_DISABLED: "true",
      BOOTLACE_CACHE_DIR: TEST_CACHE_DIR,
    });
    expect(existsSync(seen.env.AWS_CONFIG_FILE ?? "/")).toBe(false);
    expect(existsSync(seen.env.AWS_SHARED_CREDENTIALS_FILE ?? "/")).toBe(false);
    expect(seen.env.HOME).not.toBe(process.env.HOME);
    expect(seen.cwd).toBe(seen.env.HOME);
  } finally {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_REGION;
  }
});

it("passes stdin and the exit code, and leaves non-JSON output unparsed", async () => {
  const root = await makeRoot();
  const result = await runBootlace(["validate", "-", "fail"], {
    ...endpoints,
    root,
    node: fakeNode,
    stdin: "version: 1\n",
  });
  expect(result.code).toBe(3);
  expect((result.json as Recorded).stdin).toBe("version: 1\n");

  const text = await runBootlace(["status"], { ...endpoints, root, node: "/bin/echo" });
  expect(text.stdout.trim()).toBe(`${BUNDLE} status --root ${root}`);
  expect(text.json).toBeUndefined();
});

it("kills a run that outlives timeoutMs and says so", async () => {
  const root = await makeRoot();
  const started = Date.now();
  const result = await runBootlace(["watch", "hang"], { ...endpoints, root, node: fakeNode, timeoutMs: 500 });
  expect(Date.now() - started).toBeLessThan(5_000);
  expect(result.timedOut).toBe(true);
  expect(result.code).toBeNull();
  expect(result.stderr).toMatch(/killed: bootlace watch hang did not exit within 500 ms/);
});

it.each([
  ["the real IMDS", { imds: "http://169.254.169.254", aws: endpoints.aws }],
  ["real AWS", { imds: endpoints.imds, aws: "https://ec2.us-east-1.amazonaws.com" }],
  ["a non-loopback host", { imds: endpoints.imds, aws: "http://localhost:5000" }],
])("refuses to point the bundle at %s", async (_, o) => {
  await expect(runBootlace(["run"], { ...o, root: dir, node: fakeNode })).rejects.toThrow(/is not on 127\.0\.0\.1/);
});

it("refuses an endpoint override in env that leaves loopback", async () => {
  await expect(
    runBootlace(["run"], {
      ...endpoints,
      root: dir,
      node: fakeNode,
      env: { AWS_ENDPOINT_URL_ROUTE_53: "https://route53.amazonaws.com" },
    }),
  ).rejects.toThrow(/AWS_ENDPOINT_URL_ROUTE_53/);
});
