// The IMDS emulator keeps the token rules of the reference (section 1), so tests against it mean something.
import { execFile } from "node:child_process";
import { request as httpRequest } from "node:http";
import { promisify } from "node:util";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DEFAULT_CREDENTIALS,
  DEFAULT_ROLE,
  startImdsEmulator,
  testInstance,
  type ImdsEmulator,
  type ImdsEmulatorOptions,
} from "../harness/imds-emulator";

const execFileAsync = promisify(execFile);
const emulators: ImdsEmulator[] = [];
afterEach(async () => {
  await Promise.all(emulators.splice(0).map((e) => e.close()));
});

async function emulator(o: Partial<ImdsEmulatorOptions> = {}): Promise<ImdsEmulator> {
  const emu = await startImdsEmulator({ instance: testInstance(), ...o });
  emulators.push(emu);
  return emu;
}

interface Reply {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

/** One raw request on a fresh connection, so nothing a real client adds or reuses gets in the way. */
function send(emu: ImdsEmulator, method: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${emu.endpoint}${path}`, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: res.headers }),
      );
    });
    req.on("error", reject);
    req.end();
  });
}

const TTL = "X-aws-ec2-metadata-token-ttl-seconds";

async function token(emu: ImdsEmulator, ttl = "21600"): Promise<string> {
  const reply = await send(emu, "PUT", "/latest/api/token", { [TTL]: ttl });
  expect(reply.status).toBe(200);
  return reply.body;
}

async function get(emu: ImdsEmulator, path: string, tok?: string): Promise<Reply> {
  return send(emu, "GET", path, tok === undefined ? {} : { "X-aws-ec2-metadata-token": tok });
}

describe("token PUT", () => {
  test("issues a token and echoes the TTL header", async () => {
    const emu = await emulator();
    const reply = await send(emu, "PUT", "/latest/api/token", { [TTL]: "300" });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBeGreaterThan(20);
    expect(reply.headers["x-aws-ec2-metadata-token-ttl-seconds"]).toBe("300");
    expect(reply.headers["content-type"]).toBe("text/plain");
    expect(emu.tokensIssued).toBe(1);
    expect(emu.requests).toEqual([{ method: "PUT", path: "/latest/api/token", status: 200, token: "none" }]);
  });

  test.each([["1"], ["21600"]])("accepts TTL %s", async (ttl) => {
    const emu = await emulator();
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: ttl })).status).toBe(200);
  });

  test.each([[undefined], ["0"], ["21601"], ["abc"], ["1.5"], ["-5"], [""]])("400 for TTL %p", async (ttl) => {
    const emu = await emulator();
    const reply = await send(emu, "PUT", "/latest/api/token", ttl === undefined ? {} : { [TTL]: ttl });
    expect(reply.status).toBe(400);
    expect(emu.tokensIssued).toBe(0);
  });

  test("403 when the PUT carries X-Forwarded-For", async () => {
    const emu = await emulator();
    const reply = await send(emu, "PUT", "/latest/api/token", { [TTL]: "60", "X-Forwarded-For": "10.0.0.9" });
    expect(reply.status).toBe(403);
    expect(emu.tokensIssued).toBe(0);
  });

  test("403 for a PUT to a dated path", async () => {
    const emu = await emulator();
    expect((await send(emu, "PUT", "/2021-03-23/api/token", { [TTL]: "60" })).status).toBe(403);
    expect(emu.tokensIssued).toBe(0);
  });
});

describe("reads need a valid token (HttpTokens=required)", () => {
  test("401 without a token, for GET and HEAD", async () => {
    const emu = await emulator();
    expect((await get(emu, "/latest/meta-data/instance-id")).status).toBe(401);
    expect((await send(emu, "HEAD", "/latest/meta-data/instance-id")).status).toBe(401);
    expect(emu.requests.map((r) => r.token)).toEqual(["none", "none"]);
  });

  test("401 with an unknown token", async () => {
    const emu = await emulator();
    await token(emu);
    const reply = await get(emu, "/latest/meta-data/instance-id", "not-a-token");
    expect(reply.status).toBe(401);
    expect(emu.requests.at(-1)?.token).toBe("invalid");
  });

  test("401 once the token's TTL has passed, by the injected clock", async () => {
    let now = 1_000_000;
    const emu = await emulator({ now: () => now });
    const tok = await token(emu, "60");
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(200);
    now += 59_999;
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(200);
    now += 1;
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(401);
  });

  test("expireAllTokens makes old tokens 401 and new ones work", async () => {
    const emu = await emulator();
    const old = await token(emu);
    emu.expireAllTokens();
    expect((await get(emu, "/latest/meta-data/instance-id", old)).status).toBe(401);
    const fresh = await token(emu);
    expect((await get(emu, "/latest/meta-data/instance-id", fresh)).body).toBe("i-0123456789abcdef0");
  });

  test("HEAD with a token answers without a body", async () => {
    const emu = await emulator();
    const reply = await send(emu, "HEAD", "/latest/meta-data/instance-id", {
      "X-aws-ec2-metadata-token": await token(emu),
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toBe("");
  });

  test("setDisabled: 403 on everything, the token PUT included", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    emu.setDisabled(true);
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(403);
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(403);
    emu.setDisabled(false);
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(200);
  });

  test("setUnavailable: 503 on everything while on, recorded, then served again", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    emu.setUnavailable(true);
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(503);
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(503);
    expect(emu.requests.slice(-2).map((r) => r.status)).toEqual([503, 503]);
    emu.setUnavailable(false);
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(200);
  });
});

describe("the tree", () => {
  test("listings and leaves agree, directories carry a trailing slash", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    const listing = (await get(emu, "/latest/meta-data/", tok)).body.split("\n");
    expect(listing).toEqual(
      expect.arrayContaining(["instance-id", "local-ipv4", "mac", "placement/", "network/", "iam/"]),
    );
    expect(listing).toContain("tags/");
    for (const name of listing) {
      const reply = await get(emu, `/latest/meta-data/${name}`, tok);
      expect([name, reply.status]).toEqual([name, 200]);
    }
    expect((await get(emu, "/latest/meta-data/placement/", tok)).body).toBe("availability-zone\nregion");
    expect((await get(emu, "/latest/meta-data/placement/region", tok)).body).toBe("eu-west-1");
    expect((await get(emu, "/latest/meta-data/instance-id/", tok)).status).toBe(404);
    expect((await get(emu, "/latest/meta-data/nope", tok)).status).toBe(404);
    expect((await get(emu, "/latest/", tok)).body.split("\n")).toEqual(["dynamic/", "meta-data/"]);
  });

  test("the lifecycle: target lifecycle state, spot notice and rebalance appear (and change) when a test says so", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    const at = (path: string) => get(emu, `/latest/meta-data/${path}`, tok);
    expect((await at("instance-life-cycle")).body).toBe("on-demand");
    for (const path of [
      "autoscaling/target-lifecycle-state",
      "spot/instance-action",
      "events/recommendations/rebalance",
    ]) {
      expect([path, (await at(path)).status]).toEqual([path, 404]);
    }
    emu.update({
      instanceLifeCycle: "spot",
      lifecycleState: "Warmed:Stopped",
      spotAction: { action: "terminate", time: "2026-01-01T00:02:00Z" },
      rebalance: { noticeTime: "2026-01-01T00:00:00Z" },
    });
    expect((await at("instance-life-cycle")).body).toBe("spot");
    expect((await at("autoscaling/target-lifecycle-state")).body).toBe("Warmed:Stopped");
    expect(JSON.parse((await at("spot/instance-action")).body)).toEqual({
      action: "terminate",
      time: "2026-01-01T00:02:00Z",
    });
    expect(JSON.parse((await at("events/recommendations/rebalance")).body)).toEqual({
      noticeTime: "2026-01-01T00:00:00Z",
    });
    emu.update({ lifecycleState: "InService" });
    expect((await at("autoscaling/target-lifecycle-state")).body).toBe("InService");
  });

  test("the network interface of the MAC", async () => {
    const emu = await emulator({ instance: testInstance({ interfaceId: "eni-0aaaabbbbccccdddd" }) });
    const tok = await token(emu);
    const base = "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/";
    expect((await get(emu, "/latest/meta-data/network/interfaces/macs/", tok)).body).toBe("0a:1b:2c:3d:4e:5f/");
    const listing = (await get(emu, base, tok)).body.split("\n");
    for (const name of ["local-ipv4s", "subnet-id", "vpc-id", "vpc-ipv4-cidr-block", "vpc-ipv4-cidr-blocks"]) {
      expect(listing).toContain(name);
    }
    expect(listing).toEqual(expect.arrayContaining(["interface-id", "device-number", "public-ipv4s"]));
    expect((await get(emu, `${base}vpc-ipv4-cidr-block`, tok)).body).toBe("10.20.0.0/16");
    expect((await get(emu, `${base}interface-id`, tok)).body).toBe("eni-0aaaabbbbccccdddd");
    expect((await get(emu, `${base}ipv6s`, tok)).status).toBe(404);
    emu.update({ ipv6s: ["2001:db8::5", "2001:db8::6"] });
    expect((await get(emu, `${base}ipv6s`, tok)).body).toBe("2001:db8::5\n2001:db8::6");
  });

  test("public-ipv4 only when set; update() applies to the next request", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    expect((await get(emu, "/latest/meta-data/public-ipv4", tok)).body).toBe("203.0.113.25");
    emu.update({ publicIpv4: undefined, privateIpv4: "10.20.1.18" });
    expect((await get(emu, "/latest/meta-data/public-ipv4", tok)).status).toBe(404);
    expect((await get(emu, "/latest/meta-data/", tok)).body.split("\n")).not.toContain("public-ipv4");
    expect((await get(emu, "/latest/meta-data/local-ipv4", tok)).body).toBe("10.20.1.18");
  });

  test("tags only when enabled, keys listed, values by key", async () => {
    const emu = await emulator({ instance: testInstance({ tags: { Name: "web-1", "app:tier": "front" } }) });
    const tok = await token(emu);
    expect((await get(emu, "/latest/meta-data/tags/instance/", tok)).body).toBe("Name\napp:tier");
    expect((await get(emu, `/latest/meta-data/tags/instance/${encodeURIComponent("app:tier")}`, tok)).body).toBe(
      "front",
    );
    emu.setTagsEnabled(false);
    expect((await get(emu, "/latest/meta-data/tags/instance/", tok)).status).toBe(404);
    expect((await get(emu, "/latest/meta-data/", tok)).body.split("\n")).not.toContain("tags/");
  });

  test("refuses tag keys IMDS cannot serve", async () => {
    await expect(startImdsEmulator({ instance: testInstance({ tags: { "a/b": "x" } }) })).rejects.toThrow(/"a\/b"/);
    const emu = await emulator();
    expect(() => emu.update({ tags: { "has space": "x" } })).toThrow(/"has space"/);
  });

  test("user-data is served as bytes and 404 when absent", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    expect((await get(emu, "/latest/user-data", tok)).status).toBe(404);
    emu.update({ userData: "#!/bin/sh\necho hi\n" });
    expect((await get(emu, "/latest/user-data", tok)).body).toBe("#!/bin/sh\necho hi\n");
  });

  test("identity document and instance-profile credentials are JSON", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    const doc = JSON.parse((await get(emu, "/latest/dynamic/instance-identity/document", tok)).body) as object;
    expect(doc).toMatchObject({
      accountId: "123456789012",
      availabilityZone: "eu-west-1b",
      instanceId: "i-0123456789abcdef0",
      privateIp: "10.20.1.17",
      region: "eu-west-1",
    });
    expect((await get(emu, "/latest/meta-data/iam/security-credentials/", tok)).body).toBe("bootlace-test-role");
    const creds = JSON.parse(
      (await get(emu, "/latest/meta-data/iam/security-credentials/bootlace-test-role", tok)).body,
    ) as Record<string, string>;
    expect(creds).toMatchObject({ Code: "Success", Type: "AWS-HMAC", AccessKeyId: DEFAULT_CREDENTIALS.accessKeyId });
    const hoursLeft = (Date.parse(creds.Expiration ?? "") - Date.now()) / 3_600_000;
    expect(hoursLeft).toBeGreaterThan(5.9);
    expect(hoursLeft).toBeLessThan(6.1);
  });
});

describe("instance profile and Auto Scaling", () => {
  test("setInstanceProfile(false): no meta-data/iam/ at all", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    emu.setInstanceProfile(false);
    expect((await get(emu, "/latest/meta-data/", tok)).body.split("\n")).not.toContain("iam/");
    expect((await get(emu, "/latest/meta-data/iam/info", tok)).status).toBe(404);
  });

  test("lifecycleState: served at autoscaling/target-lifecycle-state, 404 without it", async () => {
    const emu = await emulator({ instance: testInstance({ lifecycleState: "InService" }) });
    const tok = await token(emu);
    expect((await get(emu, "/latest/meta-data/autoscaling/target-lifecycle-state", tok)).body).toBe("InService");
    emu.update({ lifecycleState: undefined });
    expect((await get(emu, "/latest/meta-data/autoscaling/target-lifecycle-state", tok)).status).toBe(404);
  });
});

describe("faults", () => {
  test("failNext: count and path prefix (relative to /latest/ or absolute)", async () => {
    const emu = await emulator();
    const tok = await token(emu);
    emu.failNext(500, 2, "meta-data/mac");
    emu.failNext(503, 1, "/latest/api/token");
    expect((await get(emu, "/latest/meta-data/instance-id", tok)).status).toBe(200);
    expect((await get(emu, "/latest/meta-data/mac", tok)).status).toBe(500);
    expect((await get(emu, "/latest/meta-data/mac", tok)).status).toBe(500);
    expect((await get(emu, "/latest/meta-data/mac", tok)).status).toBe(200);
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(503);
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(200);
  });

  test("refuse: nothing listens until availableAfterMs", async () => {
    const emu = await emulator({ availableAfterMs: 300 });
    await expect(send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).rejects.toMatchObject({
      code: "ECONNREFUSED",
    });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(200);
  });

  test("reset: connections are reset until availableAfterMs", async () => {
    const emu = await emulator({ availableAfterMs: 300, unavailableMode: "reset" });
    await expect(send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).rejects.toMatchObject({ code: "ECONNRESET" });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(200);
  });

  test("503: every request is refused politely until availableAfterMs", async () => {
    const emu = await emulator({ availableAfterMs: 300, unavailableMode: "503" });
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(200);
  });

  test("failNext with skip: the first matching requests pass, then the next ones fail", async () => {
    const emu = await emulator();
    emu.failNext(500, 2, "/latest/api/token", 1);
    const put = async () => (await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status;
    expect([await put(), await put(), await put(), await put()]).toEqual([200, 500, 500, 200]);
  });

  test("flaky: the drawn share of requests fails, token PUTs and tokenless ones included", async () => {
    const draws = [0.1, 0.9, 0.2, 0.8];
    let n = 0;
    const emu = await emulator({ flaky: { rate: 0.3, random: () => draws[n++ % draws.length] ?? 0 } });
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(500);
    const tok = await token(emu);
    expect((await get(emu, "/latest/meta-data/mac", tok)).status).toBe(500);
    expect((await get(emu, "/latest/meta-data/mac")).status).toBe(401);
    emu.setFlaky({ rate: 1, fault: 503 });
    expect((await get(emu, "/latest/meta-data/mac", tok)).status).toBe(503);
    emu.setFlaky({ rate: 1, fault: "reset" });
    await expect(get(emu, "/latest/meta-data/mac", tok)).rejects.toMatchObject({ code: "ECONNRESET" });
    emu.setFlaky(undefined);
    expect((await get(emu, "/latest/meta-data/mac", tok)).status).toBe(200);
    expect(emu.requests.map((r) => `${r.method} ${r.status} ${r.token}`)).toEqual([
      "PUT 500 none",
      "PUT 200 none",
      "GET 500 valid",
      "GET 401 none",
      "GET 503 valid",
      "GET 0 valid",
      "GET 200 valid",
    ]);
    expect(emu.tokenless()).toEqual([{ method: "GET", path: "/latest/meta-data/mac", status: 401, token: "none" }]);
  });

  test("credentialsAfterMs: meta-data/iam/ is absent until then, as while a profile is being associated", async () => {
    const emu = await emulator({ credentialsAfterMs: 300 });
    const tok = await token(emu);
    expect((await get(emu, "/latest/meta-data/iam/security-credentials/", tok)).status).toBe(404);
    expect((await get(emu, "/latest/meta-data/", tok)).body.split("\n")).not.toContain("iam/");
    await new Promise((resolve) => setTimeout(resolve, 400));
    const listing = await get(emu, "/latest/meta-data/iam/security-credentials/", tok);
    expect(listing).toMatchObject({ status: 200, body: DEFAULT_ROLE });
  });

  test("setInstanceProfile: detached and attached while running", async () => {
    const emu = await emulator({ credentialsAfterMs: Infinity });
    const tok = await token(emu);
    expect((await get(emu, "/latest/meta-data/iam/info", tok)).status).toBe(404);
    emu.setInstanceProfile(true);
    expect((await get(emu, "/latest/meta-data/iam/info", tok)).status).toBe(200);
    emu.setInstanceProfile(false);
    expect((await get(emu, `/latest/meta-data/iam/security-credentials/${DEFAULT_ROLE}`, tok)).status).toBe(404);
  });

  test("setTokenReplyLost: a token PUT is taken in and never answered (a hop limit of 1)", async () => {
    const emu = await emulator();
    emu.setTokenReplyLost(true);
    const lost = send(emu, "PUT", "/latest/api/token", { [TTL]: "60" });
    while (emu.requests.length === 0) await new Promise((resolve) => setImmediate(resolve));
    expect(emu.requests).toEqual([{ method: "PUT", path: "/latest/api/token", status: 0, token: "none" }]);
    emu.setTokenReplyLost(false);
    expect((await send(emu, "PUT", "/latest/api/token", { [TTL]: "60" })).status).toBe(200);
    await emu.close();
    await expect(lost).rejects.toMatchObject({ code: "ECONNRESET" });
  });

  test("binds the loopback address only", async () => {
    const emu = await emulator();
    expect(emu.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });
});

describe("the AWS SDK's default credential chain", () => {
  test("gets instance-profile credentials over IMDSv2 with nothing in the environment", async () => {
    const emu = await emulator();
    const empty = mkdtempSync(join(tmpdir(), "bootlace-imds-"));
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("AWS_") && v !== undefined) env[k] = v;
    Object.assign(env, {
      AWS_EC2_METADATA_SERVICE_ENDPOINT: emu.endpoint,
      AWS_EC2_METADATA_V1_DISABLED: "true", // a fallback to IMDSv1 would fail the test instead of hiding
      AWS_SHARED_CREDENTIALS_FILE: join(empty, "credentials"),
      AWS_CONFIG_FILE: join(empty, "config"),
    });
    // A separate Node: the chain loads its providers with dynamic import(), which jest's CommonJS runtime rejects.
    const script =
      "require('@aws-sdk/credential-provider-node').defaultProvider()()" +
      ".then((c) => process.stdout.write(JSON.stringify(c)), (e) => { console.error(e); process.exit(1); })";
    const { stdout } = await execFileAsync(process.execPath, ["-e", script], { env, cwd: join(__dirname, "../..") });
    expect(JSON.parse(stdout)).toMatchObject({
      accessKeyId: DEFAULT_CREDENTIALS.accessKeyId,
      secretAccessKey: DEFAULT_CREDENTIALS.secretAccessKey,
      sessionToken: DEFAULT_CREDENTIALS.sessionToken,
    });
    expect(emu.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.token}`)).toEqual([
      "PUT /latest/api/token 200 none",
      "GET /latest/meta-data/iam/security-credentials/ 200 valid",
      "GET /latest/meta-data/iam/security-credentials/bootlace-test-role 200 valid",
    ]);
  });
});
