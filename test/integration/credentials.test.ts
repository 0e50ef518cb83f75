// Instance-profile credentials and a flaky metadata service, end to end: the real bundle with nothing in its
// environment but the endpoints, IMDS from the emulator (tokens required, so a tokenless IMDSv1 GET gets 401 and is
// recorded), AWS from moto behind the fidelity proxy. The world is checked afterwards: the record is there or not.
import { readFile } from "node:fs/promises";
import type { ImdsEmulator, ImdsEmulatorOptions } from "../harness/imds-emulator";
import { BUNDLE, makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(180_000);

let world: World;
let vpcId: string;
let zoneId: string;

beforeAll(async () => {
  world = await startWorld();
  ({ vpcId } = await world.createVpc("10.60.0.0/16"));
  zoneId = await world.createHostedZone("creds.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

// A name that needs IMDS twice over: the instance id and a tag, both read through the flaky service.
const userData = [
  "#bootlace",
  "dns:",
  "  records:",
  "    - zone: creds.internal",
  '      name: "{{tags.Role}}-{{instance.id}}.creds.internal"',
].join("\n");

async function boot(opts: Omit<ImdsEmulatorOptions, "instance">): Promise<{ imds: ImdsEmulator; name: string }> {
  const instance = await world.launchInstance({ vpcId, tags: { Role: "web" } });
  const imds = await world.startImds({ ...instance, userData }, opts);
  return { imds, name: `web-${instance.instanceId}.creds.internal.` };
}

async function run(imds: ImdsEmulator, deadlineSeconds: number) {
  return runBootlace(["run", "--deadline", String(deadlineSeconds)], {
    imds: imds.endpoint,
    aws: world.proxy.endpoint,
    root: await makeRoot(),
    // As on an instance where nothing turned IMDSv1 off: bootlace alone must keep to IMDSv2.
    env: { AWS_EC2_METADATA_V1_DISABLED: "false" },
    timeoutMs: (deadlineSeconds + 30) * 1000,
  });
}

const recordsNamed = async (name: string) => (await world.listRecords(zoneId)).filter((r) => r.name === name);

describe("a metadata service that fails requests all through the run", () => {
  it.each([
    ["500", 500],
    ["503", 503],
    ["a connection reset", "reset"],
  ] as const)("30%% answered with %s: the run converges, with no tokenless request", async (_, fault) => {
    const { imds, name } = await boot({ flaky: { rate: 0.3, fault } });

    const result = await run(imds, 120);

    expect(result.stderr).not.toMatch(/Could not load credentials/);
    expect(result.code).toBe(0);
    expect(await recordsNamed(name)).toEqual([expect.objectContaining({ type: "A" })]);
    expect(imds.requests.some((r) => r.path.startsWith("/latest/meta-data/iam/security-credentials/"))).toBe(true);
    expect(imds.requests.filter((r) => r.status === (fault === "reset" ? 0 : fault)).length).toBeGreaterThan(0);
    expect(imds.tokenless()).toEqual([]);
  });

  it("every token request after the first answers 500: the credentials still come over IMDSv2", async () => {
    // Where the SDK's own provider asks for a token of its own and, refused, falls back to IMDSv1.
    const { imds, name } = await boot({});
    imds.failNext(500, 1000, "/latest/api/token", 1);

    const result = await run(imds, 60);

    expect(result.code).toBe(0);
    expect(await recordsNamed(name)).toEqual([expect.objectContaining({ type: "A" })]);
    expect(imds.requests.some((r) => r.path.startsWith("/latest/meta-data/iam/security-credentials/"))).toBe(true);
    expect(imds.tokenless()).toEqual([]);
  });
});

describe("instance-profile credentials that are slow to come", () => {
  it("credentials that appear 15 s after boot: the run waits for them and converges", async () => {
    const { imds, name } = await boot({ credentialsAfterMs: 15_000 });

    const result = await run(imds, 90);

    expect(result.code).toBe(0);
    expect(await recordsNamed(name)).toEqual([expect.objectContaining({ type: "A" })]);
    const asked = imds.requests.filter((r) => r.path === "/latest/meta-data/iam/security-credentials/");
    expect(asked.filter((r) => r.status === 404).length).toBeGreaterThan(1);
    expect(asked.at(-1)?.status).toBe(200);
    expect(imds.tokenless()).toEqual([]);
  });

  it("no instance profile at all: exit 1 at the deadline, saying so, without a stack trace", async () => {
    const { imds, name } = await boot({ credentialsAfterMs: Infinity });

    const result = await run(imds, 8);

    expect(result.timedOut).toBe(false);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no credentials from the instance profile/);
    expect(result.stderr).toMatch(/attach an instance profile/i);
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(await recordsNamed(name)).toEqual([]);
    expect(imds.tokenless()).toEqual([]);
  });
});

it("the bundle holds no IMDS client but bootlace's own: the SDK's, which can fall back to IMDSv1, is left out", async () => {
  const bundle = await readFile(BUNDLE, "utf8");
  // Strings of @smithy/credential-provider-imds, which the SDK's default chain brings in.
  expect(bundle).not.toMatch(/AWS_EC2_METADATA_V1_DISABLED|ec2_metadata_v1_disabled/);
  expect(bundle).toMatch(/meta-data\/iam\/security-credentials\//);
});
