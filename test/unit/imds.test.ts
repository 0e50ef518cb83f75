// The IMDSv2 client and the instance-facts reader against the token-enforcing emulator (127.0.0.1 only).
import { getEventListeners } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { systemClock, type Clock } from "../../agent/core/clock";
import { ConfigError, MetadataUnavailableError } from "../../agent/core/errors";
import { ImdsClient, ImdsTokenCache, imdsEndpointFrom, type ImdsClientOptions } from "../../agent/instance/imds";
import { readInstanceFacts, readUserData } from "../../agent/instance/read";
import { silentLogger, type LogFields, type Logger } from "../../agent/core/log";
import type { Deadline } from "../../agent/core/retry";
import { startImdsEmulator, testInstance, type ImdsEmulator, type ImdsEmulatorOptions } from "../harness/imds-emulator";

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

/** A real-time deadline, aborted by a timer like the run's own. */
function deadlineIn(ms: number): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error("run deadline passed")), ms);
  cleanups.push(() => clearTimeout(timer));
  return { at: Date.now() + ms, signal: controller.signal };
}

async function emulator(o: Partial<ImdsEmulatorOptions> = {}): Promise<ImdsEmulator> {
  const emu = await startImdsEmulator({ instance: testInstance(), ...o });
  cleanups.push(() => emu.close());
  return emu;
}

function client(emu: { endpoint: string }, o: Partial<ImdsClientOptions> = {}): ImdsClient {
  const c = new ImdsClient({
    endpoint: emu.endpoint,
    clock: systemClock,
    deadline: deadlineIn(5000),
    log: silentLogger,
    random: () => 0.5,
    ...o,
  });
  cleanups.push(() => c.close());
  return c;
}

interface Line {
  level: string;
  msg: string;
  fields: LogFields | undefined;
}
function captureLogger(): { log: Logger; lines: Line[] } {
  const lines: Line[] = [];
  const log: Logger = {
    debug: (msg, fields) => lines.push({ level: "debug", msg, fields }),
    info: (msg, fields) => lines.push({ level: "info", msg, fields }),
    warn: (msg, fields) => lines.push({ level: "warn", msg, fields }),
    error: (msg, fields) => lines.push({ level: "error", msg, fields }),
    child: () => log,
  };
  return { log, lines };
}

/** Time that moves only when told to (or when slept through). */
function fakeClock(start = 1_700_000_000_000): Clock & { t: number; sleeps: number[] } {
  const clock = {
    t: start,
    sleeps: [] as number[],
    now: () => clock.t,
    sleep: (ms: number) => {
      clock.sleeps.push(ms);
      clock.t += ms;
      return Promise.resolve();
    },
  };
  return clock;
}

function expectNoTokenlessReads(emu: ImdsEmulator): void {
  const reads = emu.requests.filter((r) => r.method === "GET" || r.method === "HEAD");
  expect(reads.length).toBeGreaterThan(0);
  expect(reads.filter((r) => r.token === "none")).toEqual([]);
}

describe("imdsEndpointFrom", () => {
  test("defaults to the IPv4 link-local address", () => {
    expect(imdsEndpointFrom({})).toBe("http://169.254.169.254");
    expect(imdsEndpointFrom({ AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv4" })).toBe("http://169.254.169.254");
  });
  test("IPv6 mode uses fd00:ec2::254", () => {
    expect(imdsEndpointFrom({ AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv6" })).toBe("http://[fd00:ec2::254]");
  });
  test("an explicit endpoint wins over the mode, reduced to its origin", () => {
    expect(
      imdsEndpointFrom({
        AWS_EC2_METADATA_SERVICE_ENDPOINT: "http://127.0.0.1:8111/",
        AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv6",
      }),
    ).toBe("http://127.0.0.1:8111");
  });
  test("garbage is a ConfigError naming the variable", () => {
    expect(() => imdsEndpointFrom({ AWS_EC2_METADATA_SERVICE_ENDPOINT: "not a url" })).toThrow(
      /AWS_EC2_METADATA_SERVICE_ENDPOINT: .*not a URL/,
    );
    expect(() => imdsEndpointFrom({ AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv5" })).toThrow(ConfigError);
  });
});

describe("ImdsClient tokens", () => {
  test("one token serves many reads, sequential and concurrent", async () => {
    const emu = await emulator();
    const c = client(emu);
    for (let i = 0; i < 5; i++) expect(await c.getText("meta-data/instance-id")).toBe("i-0123456789abcdef0");
    const all = await Promise.all(Array.from({ length: 10 }, () => c.getText("meta-data/local-ipv4")));
    expect(all).toEqual(Array(10).fill("10.20.1.17"));
    expect(emu.tokensIssued).toBe(1);
    expect(emu.requests.filter((r) => r.method === "PUT")).toHaveLength(1);
    expectNoTokenlessReads(emu);
  });

  test("asks for the configured TTL and refreshes when less than 10% of it remains", async () => {
    const clock = fakeClock();
    const emu = await emulator({ now: clock.now });
    const c = client(emu, { clock, tokenTtlSeconds: 21600 });
    await c.getText("meta-data/instance-id");
    clock.t += 19000_000; // 2600 s left: more than 10% (2160 s), keep the token
    await c.getText("meta-data/instance-id");
    expect(emu.tokensIssued).toBe(1);
    clock.t += 500_000; // 2100 s left: refresh before it can expire in flight
    await c.getText("meta-data/instance-id");
    expect(emu.tokensIssued).toBe(2);
    expect(emu.requests.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
  });

  test("with a short TTL refreshes when less than 60 s remain", async () => {
    const clock = fakeClock();
    const emu = await emulator({ now: clock.now });
    const c = client(emu, { clock, tokenTtlSeconds: 300 });
    await c.getText("meta-data/mac");
    clock.t += 239_000; // 61 s left
    await c.getText("meta-data/mac");
    expect(emu.tokensIssued).toBe(1);
    clock.t += 2_000; // 59 s left
    await c.getText("meta-data/mac");
    expect(emu.tokensIssued).toBe(2);
  });

  test("a 401 gets one fresh token and one retry", async () => {
    const emu = await emulator();
    const c = client(emu);
    await c.getText("meta-data/instance-id");
    emu.expireAllTokens();
    expect(await c.getText("meta-data/mac")).toBe("0a:1b:2c:3d:4e:5f");
    expect(emu.tokensIssued).toBe(2);
    expect(emu.requests.map((r) => `${r.method} ${r.status} ${r.token}`)).toEqual([
      "PUT 200 none",
      "GET 200 valid",
      "GET 401 invalid",
      "PUT 200 none",
      "GET 200 valid",
    ]);
  });

  test("a second 401 with a fresh token is an error, not a loop", async () => {
    const emu = await emulator();
    const c = client(emu);
    emu.failNext(401, 5, "meta-data/instance-id");
    await expect(c.getText("meta-data/instance-id")).rejects.toThrow(
      /401 to GET \/latest\/meta-data\/instance-id even with a freshly issued token/,
    );
    expect(emu.requests.filter((r) => r.method === "GET")).toHaveLength(2);
  });

  test("a client given another's token cache uses its token; one for another endpoint does not", async () => {
    const emu = await emulator();
    const other = await emulator();
    const tokens = new ImdsTokenCache();
    const first = client(emu, { tokens });
    await first.getText("meta-data/instance-id");
    await first.close();

    expect(await client(emu, { tokens }).getText("meta-data/mac")).toBe("0a:1b:2c:3d:4e:5f");
    expect(emu.tokensIssued).toBe(1);
    expect(emu.requests.map((r) => `${r.method} ${r.status} ${r.token}`)).toEqual([
      "PUT 200 none",
      "GET 200 valid",
      "GET 200 valid",
    ]);

    expect(await client(other, { tokens }).getText("meta-data/mac")).toBe("0a:1b:2c:3d:4e:5f");
    expect(other.requests.map((r) => `${r.method} ${r.status} ${r.token}`)).toEqual(["PUT 200 none", "GET 200 valid"]);
  });

  test("rejects a TTL outside 1..21600 before sending anything", () => {
    expect(() => client({ endpoint: "http://127.0.0.1:1" }, { tokenTtlSeconds: 21601 })).toThrow(ConfigError);
    expect(() => client({ endpoint: "http://127.0.0.1:1" }, { tokenTtlSeconds: 0 })).toThrow(ConfigError);
  });
});

describe("ImdsClient answers", () => {
  test("404 is undefined (absent), not an error", async () => {
    const emu = await emulator({ instance: testInstance({ publicIpv4: undefined }) });
    const c = client(emu);
    expect(await c.getText("meta-data/public-ipv4")).toBeUndefined();
    expect(await c.getBytes("user-data")).toBeUndefined();
    expect(await c.getText("meta-data/no-such-thing")).toBeUndefined();
  });

  test("bytes come back exactly (gzip user-data), and a leading slash still means /latest/", async () => {
    const gz = gzipSync(Buffer.from("#cloud-config\nbootlace: {}\n"));
    const emu = await emulator({ instance: testInstance({ userData: gz }) });
    const c = client(emu);
    expect((await readUserData(c))?.equals(gz)).toBe(true);
    expect(await c.getText("/meta-data/instance-id")).toBe("i-0123456789abcdef0");
    expect(emu.requests.at(-1)?.path).toBe("/latest/meta-data/instance-id");
  });

  test("403 fails fast and names the likely causes", async () => {
    const emu = await emulator();
    emu.setDisabled(true);
    const c = client(emu);
    const started = Date.now();
    const error = await c.getText("meta-data/instance-id").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MetadataUnavailableError);
    expect((error as Error).message).toMatch(/HttpEndpoint=disabled/);
    expect((error as Error).message).toMatch(/X-Forwarded-For/);
    expect(emu.requests).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  test("400 on the token PUT is a clear error about the TTL header, not retried", async () => {
    const emu = await emulator();
    emu.failNext(400, 1, "/latest/api/token");
    const c = client(emu);
    await expect(c.getText("meta-data/instance-id")).rejects.toThrow(
      /rejected the token request \(400.*x-aws-ec2-metadata-token-ttl-seconds.*21600/,
    );
    expect(emu.requests).toHaveLength(1);
  });

  test("5xx is retried with logged, bounded backoff", async () => {
    const emu = await emulator();
    emu.failNext(500, 2, "meta-data/");
    emu.failNext(503, 1, "/latest/api/token");
    const { log, lines } = captureLogger();
    const c = client(emu, { log });
    expect(await c.getText("meta-data/instance-id")).toBe("i-0123456789abcdef0");
    expect(emu.requests.map((r) => r.status)).toEqual([503, 200, 500, 500, 200]);
    expect(lines.filter((l) => l.level === "debug")).toHaveLength(3);
    expect(lines[0]?.fields).toMatchObject({ path: "/latest/meta-data/instance-id", attempt: 1, delayMs: 75 });
  });

  test.each([500, 503, "reset"] as const)(
    "after boot too, a service failing 30%% of requests (%s) is waited out: every read answers, all with a token",
    async (fault) => {
      const emu = await emulator();
      const c = client(emu, { deadline: deadlineIn(20_000) });
      expect(await c.getText("meta-data/instance-id")).toBe("i-0123456789abcdef0");
      let n = 0;
      emu.setFlaky({ rate: 0.3, fault, random: () => [0.1, 0.5, 0.9, 0.2, 0.7, 0.6][n++ % 6] ?? 0 });
      const reads = await Promise.all(
        Array.from({ length: 20 }, (_, i) => c.getText(i % 2 ? "meta-data/local-ipv4" : "meta-data/mac")),
      );
      expect(reads).toEqual(Array.from({ length: 20 }, (_, i) => (i % 2 ? "10.20.1.17" : "0a:1b:2c:3d:4e:5f")));
      expect(emu.requests.filter((r) => r.status === (fault === "reset" ? 0 : fault)).length).toBeGreaterThan(5);
      expect(emu.tokenless()).toEqual([]);
    },
  );

  test("other errors (405) are not retried", async () => {
    const emu = await emulator();
    emu.failNext(405, 1, "meta-data/");
    const c = client(emu);
    await expect(c.getText("meta-data/instance-id")).rejects.toThrow(/answered 405/);
    expect(emu.requests.filter((r) => r.method === "GET")).toHaveLength(1);
  });
});

describe("ImdsClient at boot", () => {
  test.each(["refuse", "reset", "503"] as const)("waits for a slow start (%s) within the deadline", async (mode) => {
    const emu = await emulator({ availableAfterMs: 700, unavailableMode: mode });
    const started = Date.now();
    const c = client(emu, { deadline: deadlineIn(4000) });
    expect(await c.getText("meta-data/instance-id")).toBe("i-0123456789abcdef0");
    expect(Date.now() - started).toBeGreaterThanOrEqual(650);
    if (mode === "503") expect(emu.requests.filter((r) => r.status === 503).length).toBeGreaterThan(1);
    expect(emu.tokensIssued).toBe(1);
    expectNoTokenlessReads(emu);
  });

  test.each(["refuse", "reset", "503"] as const)("never available (%s): gives up at the deadline", async (mode) => {
    const emu = await emulator({ availableAfterMs: 60_000, unavailableMode: mode });
    const started = Date.now();
    const c = client(emu, { deadline: deadlineIn(1200) });
    const error = await c.getText("meta-data/instance-id").catch((e: unknown) => e);
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(MetadataUnavailableError);
    const message = (error as Error).message;
    expect(message).toMatch(/did not answer GET \/latest\/meta-data\/instance-id within the deadline \(waited \d/);
    expect(message).toMatch(/last error: /);
    expect(message).toMatch(/HttpPutResponseHopLimit/);
    if (mode === "503") expect(message).toMatch(/answered 503/);
    if (mode === "refuse") expect(message).toMatch(/ECONNREFUSED/);
    expect(elapsed).toBeLessThan(1200 + 500);
    expect(elapsed).toBeGreaterThan(500);
  });

  test("all waits go through the injected clock, bounded and jittered, with one warning when slow", async () => {
    const clock = fakeClock();
    const emu = await emulator({ availableAfterMs: 60_000, unavailableMode: "503" });
    const { log, lines } = captureLogger();
    const randoms = [0, 0.99];
    let n = 0;
    const c = client(emu, {
      clock,
      log,
      deadline: { at: clock.t + 20_000, signal: new AbortController().signal },
      random: () => randoms[n++ % 2] ?? 0,
    });
    const realStart = Date.now();
    await expect(c.getText("meta-data/instance-id")).rejects.toThrow(/waited (1\d|20)\.\d s/);
    expect(Date.now() - realStart).toBeLessThan(2000);
    expect(clock.sleeps[0]).toBe(50); // equal jitter around an initial 100 ms
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(2000);
    expect(new Set(clock.sleeps.slice(-4)).size).toBeGreaterThan(1);
    expect(lines.filter((l) => l.level === "warn")).toHaveLength(1);
    expect(lines.find((l) => l.level === "warn")?.msg).toMatch(/still waiting/);
  });

  test("a token PUT that hangs while the service is up points at the hop limit", async () => {
    // What a container behind HttpPutResponseHopLimit=1 sees: the connection opens, the PUT's reply never arrives.
    const server: Server = createServer((req, res) => {
      if (req.method === "PUT") return; // reply lost
      res.writeHead(401).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    cleanups.push(() => server.closeAllConnections());
    const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const c = client({ endpoint }, { requestTimeoutMs: 200, deadline: deadlineIn(1500) });
    await expect(c.getText("meta-data/instance-id")).rejects.toThrow(
      /PUT \/latest\/api\/token\) was accepted but its reply never came.*HttpPutResponseHopLimit=1/,
    );
  });
});

describe("readInstanceFacts", () => {
  test("returns the instance's facts with one token", async () => {
    const emu = await emulator({
      instance: testInstance({ tags: { Name: "web-1", "aws:autoscaling:groupName": "web" } }),
    });
    const read = await readInstanceFacts(client(emu));
    expect(read.tags).toEqual({ Name: "web-1", "aws:autoscaling:groupName": "web" });
    expect(read.facts).toEqual({
      id: "i-0123456789abcdef0",
      region: "eu-west-1",
      az: "eu-west-1b",
      accountId: "123456789012",
      privateIpv4: "10.20.1.17",
      publicIpv4: "203.0.113.25",
      mac: "0a:1b:2c:3d:4e:5f",
      interfaceId: "eni-0123456789abcdef0",
      privateIpv4s: ["10.20.1.17"],
      vpcId: "vpc-0a1b2c3d4e5f60718",
      subnetId: "subnet-0fedcba9876543210",
      vpcCidr: "10.20.0.0/16",
      hostname: "ip-10-20-1-17.eu-west-1.compute.internal",
    });
    expect(emu.tokensIssued).toBe(1);
    expectNoTokenlessReads(emu);
  });

  test("reads concurrently through a slow boot without piling listeners on the deadline's signal", async () => {
    // Node warns (MaxListenersExceededWarning) past 10 listeners, and a boot reads a dozen paths at once.
    const emu = await emulator({ availableAfterMs: 500, unavailableMode: "503" });
    const deadline = deadlineIn(4000);
    const reading = readInstanceFacts(client(emu, { deadline }));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(getEventListeners(deadline.signal, "abort").length).toBeLessThanOrEqual(1);
    const { facts } = await reading;
    expect(facts.id).toBe("i-0123456789abcdef0");
    expect(emu.requests.filter((r) => r.method === "GET").length).toBeGreaterThan(10);
    expectNoTokenlessReads(emu);
  });

  test("tags are undefined when IMDS does not expose them; no public IP or hostname → absent", async () => {
    const emu = await emulator({ tagsEnabled: false, instance: testInstance({ publicIpv4: undefined }) });
    emu.failNext(404, 1, "meta-data/hostname");
    const read = await readInstanceFacts(client(emu));
    const { facts } = read;
    expect(read.tags).toBeUndefined();
    expect("tags" in read).toBe(false);
    expect("publicIpv4" in facts).toBe(false);
    expect("hostname" in facts).toBe(false);
    expect(facts.id).toBe("i-0123456789abcdef0");
  });

  test("the primary interface's IPv6 addresses, in IMDS order, when it has any", async () => {
    const emu = await emulator({ instance: testInstance({ ipv6s: ["2001:db8:1:2::17", "2001:db8:1:2::18"] }) });
    expect((await readInstanceFacts(client(emu))).facts.ipv6s).toEqual(["2001:db8:1:2::17", "2001:db8:1:2::18"]);
    emu.update({ ipv6s: undefined });
    expect("ipv6s" in (await readInstanceFacts(client(emu))).facts).toBe(false);
  });

  test("enabled with no tags is an empty record, not undefined", async () => {
    const emu = await emulator({ instance: testInstance({ tags: {} }) });
    expect((await readInstanceFacts(client(emu))).tags).toEqual({});
  });

  test("falls back to the placement paths without an identity document (and has no account id then)", async () => {
    const emu = await emulator();
    emu.failNext(404, 1, "dynamic/instance-identity/document");
    const { facts } = await readInstanceFacts(client(emu));
    expect(facts).toMatchObject({ id: "i-0123456789abcdef0", region: "eu-west-1", az: "eu-west-1b" });
    expect(facts.accountId).toBeUndefined();
    const paths = emu.requests.map((r) => r.path);
    expect(paths).toContain("/latest/meta-data/placement/region");
    expect(paths).toContain("/latest/meta-data/placement/availability-zone");
  });

  test.each([
    [{ privateIpv4: "10.20.1.999" }, /meta-data\/local-ipv4 returned "10.20.1.999"/],
    [{ publicIpv4: "<html>" }, /meta-data\/public-ipv4 returned "<html>"/],
    [{ instanceId: "i-xyz" }, /instance-identity\/document instanceId returned "i-xyz"/],
    [{ vpcCidr: "10.0.0.0/33" }, /vpc-ipv4-cidr-block returned "10.0.0.0\/33"/],
    [{ az: "us-east-1a" }, /availabilityZone returned "us-east-1a"/],
    [{ ipv6s: ["2001:db8::1", "10.0.0.1"] }, /ipv6s returned "10\.0\.0\.1"/],
  ])("garbage (%j) is an error naming the path", async (patch, message) => {
    const emu = await emulator({ instance: testInstance(patch) });
    const error = await readInstanceFacts(client(emu)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MetadataUnavailableError);
    expect((error as Error).message).toMatch(message);
  });

  test("a missing required item names the path", async () => {
    const emu = await emulator();
    emu.failNext(404, 1, "meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/subnet-id");
    await expect(readInstanceFacts(client(emu))).rejects.toThrow(
      /no meta-data\/network\/interfaces\/macs\/.*\/subnet-id/,
    );
  });
});
