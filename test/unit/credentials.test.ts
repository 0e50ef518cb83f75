// Where the AWS credentials come from: the environment's keys first, else the instance profile over IMDSv2, waited for
// until the deadline and fetched again before they expire.
import { systemClock } from "../../agent/core/clock";
import { MetadataUnavailableError } from "../../agent/core/errors";
import { silentLogger, type LogFields, type Logger } from "../../agent/core/log";
import type { Deadline } from "../../agent/core/retry";
import {
  CredentialsUnavailableError,
  credentialsProvider,
  environmentCredentials,
  type CredentialsOptions,
} from "../../agent/instance/credentials";
import { ImdsClient, ImdsTokenCache, type MetadataReader } from "../../agent/instance/imds";
import { DEFAULT_CREDENTIALS, DEFAULT_ROLE, startImdsEmulator, testInstance } from "../harness/imds-emulator";
import { fakeClock, type FakeClock } from "../support/fake-clock";

const ROLES = "meta-data/iam/security-credentials/";
const HOUR = 3_600_000;

/** IMDS as a map of paths, read through the MetadataReader interface; each read recorded. */
class FakeImds implements MetadataReader {
  reads: string[] = [];
  constructor(public items: Record<string, string | (() => string | undefined)> = {}) {}
  getText(path: string): Promise<string | undefined> {
    this.reads.push(path);
    const item = this.items[path];
    return Promise.resolve(typeof item === "function" ? item() : item);
  }
  getBytes(path: string): Promise<Buffer | undefined> {
    return this.getText(path).then((t) => (t === undefined ? undefined : Buffer.from(t)));
  }
}

function roleDoc(o: { key?: string; expires: number; token?: string; code?: string }): string {
  return JSON.stringify({
    Code: o.code ?? "Success",
    LastUpdated: new Date(o.expires - 6 * HOUR).toISOString(),
    Type: "AWS-HMAC",
    AccessKeyId: o.key ?? "ASIAFIRST",
    SecretAccessKey: "secret",
    Token: o.token ?? "session-token",
    Expiration: new Date(o.expires).toISOString(),
  });
}

function profile(doc: string | (() => string | undefined)): FakeImds {
  return new FakeImds({ [ROLES]: "web-role", [`${ROLES}web-role`]: doc });
}

function captureLogger(): { log: Logger; lines: { level: string; msg: string; fields?: LogFields }[] } {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const log: Logger = {
    debug: (msg, fields) => lines.push({ level: "debug", msg, ...(fields && { fields }) }),
    info: (msg, fields) => lines.push({ level: "info", msg, ...(fields && { fields }) }),
    warn: (msg, fields) => lines.push({ level: "warn", msg, ...(fields && { fields }) }),
    error: (msg, fields) => lines.push({ level: "error", msg, ...(fields && { fields }) }),
    child: () => log,
  };
  return { log, lines };
}

function options(
  imds: MetadataReader,
  o: { clock?: FakeClock; env?: Record<string, string>; log?: Logger; deadlineMs?: number } = {},
): CredentialsOptions & { clock: FakeClock } {
  const clock = o.clock ?? fakeClock();
  const deadline: Deadline = { at: clock.now() + (o.deadlineMs ?? 300_000), signal: new AbortController().signal };
  return { env: o.env ?? {}, imds, clock, deadline, log: o.log ?? silentLogger, random: () => 0.5 };
}

describe("credentials from the environment", () => {
  test("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY win: IMDS is not asked", async () => {
    const imds = profile(roleDoc({ expires: Date.now() + HOUR }));
    const env = { AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "env-secret", AWS_SESSION_TOKEN: "env-token" };

    const credentials = await credentialsProvider(options(imds, { env }))();

    expect(credentials).toEqual({ accessKeyId: "AKIAENV", secretAccessKey: "env-secret", sessionToken: "env-token" });
    expect(imds.reads).toEqual([]);
  });

  test("AWS_CREDENTIAL_EXPIRATION becomes the expiration; an unreadable one is left out with a warning", () => {
    const env = { AWS_ACCESS_KEY_ID: "AKIAENV", AWS_SECRET_ACCESS_KEY: "s" };
    expect(
      environmentCredentials({ ...env, AWS_CREDENTIAL_EXPIRATION: "2030-01-01T00:00:00Z" }, silentLogger)?.expiration,
    ).toEqual(new Date("2030-01-01T00:00:00Z"));
    const { log, lines } = captureLogger();
    expect(environmentCredentials({ ...env, AWS_CREDENTIAL_EXPIRATION: "soon" }, log)).toEqual({
      accessKeyId: "AKIAENV",
      secretAccessKey: "s",
    });
    expect(lines.map((l) => l.msg)).toEqual([expect.stringMatching(/AWS_CREDENTIAL_EXPIRATION is not a date/)]);
  });

  test("half a key pair is not used: a warning, and the instance profile's credentials", async () => {
    const clock = fakeClock();
    const imds = profile(roleDoc({ expires: clock.now() + 6 * HOUR }));
    const { log, lines } = captureLogger();

    const credentials = await credentialsProvider(options(imds, { clock, log, env: { AWS_ACCESS_KEY_ID: "AKIA" } }))();

    expect(credentials.accessKeyId).toBe("ASIAFIRST");
    expect(lines.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
      "AWS_ACCESS_KEY_ID is set without AWS_SECRET_ACCESS_KEY: not used; credentials come from the instance profile",
    ]);
  });

  test("the SDK chain's other sources (AWS_PROFILE...) are said to be not followed", async () => {
    const clock = fakeClock();
    const imds = profile(roleDoc({ expires: clock.now() + 6 * HOUR }));
    const { log, lines } = captureLogger();

    await credentialsProvider(options(imds, { clock, log, env: { AWS_PROFILE: "admin" } }))();

    expect(lines.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
      expect.stringMatching(/^AWS_PROFILE set but not followed/),
    ]);
  });
});

describe("credentials from the instance profile", () => {
  test("the role's credentials with their expiration; an empty Token means none", async () => {
    const clock = fakeClock();
    const expires = clock.now() + 6 * HOUR;
    const imds = profile(roleDoc({ expires, token: "" }));

    const credentials = await credentialsProvider(options(imds, { clock }))();

    expect(credentials).toEqual({ accessKeyId: "ASIAFIRST", secretAccessKey: "secret", expiration: new Date(expires) });
    expect(imds.reads).toEqual([ROLES, `${ROLES}web-role`]);
  });

  test("kept until 15 minutes before expiry, then fetched again", async () => {
    const clock = fakeClock();
    const first = clock.now() + HOUR;
    let doc = roleDoc({ key: "ASIAFIRST", expires: first });
    const imds = profile(() => doc);
    const provider = credentialsProvider(options(imds, { clock }));

    expect((await provider()).accessKeyId).toBe("ASIAFIRST");
    clock.advance(44 * 60_000);
    doc = roleDoc({ key: "ASIASECOND", expires: first + 6 * HOUR });
    expect((await provider()).accessKeyId).toBe("ASIAFIRST");
    expect(imds.reads).toHaveLength(2);

    clock.advance(2 * 60_000); // 14 minutes left
    const second = await provider();
    expect(second.accessKeyId).toBe("ASIASECOND");
    expect(second.expiration).toEqual(new Date(first + 6 * HOUR));
    expect(imds.reads).toHaveLength(4);
  });

  test("credentials close to expiry are used for half their remaining time, not fetched on every call", async () => {
    const clock = fakeClock();
    const imds = profile(roleDoc({ expires: clock.now() + 10 * 60_000 }));
    const provider = credentialsProvider(options(imds, { clock }));

    await provider();
    clock.advance(4 * 60_000);
    await provider();
    expect(imds.reads).toHaveLength(2);
    clock.advance(2 * 60_000);
    await provider();
    expect(imds.reads).toHaveLength(4);
  });

  test("concurrent callers (every client of a run) share one fetch", async () => {
    const clock = fakeClock();
    const imds = profile(roleDoc({ expires: clock.now() + 6 * HOUR }));
    const provider = credentialsProvider(options(imds, { clock }));

    const all = await Promise.all(Array.from({ length: 5 }, () => provider()));

    expect(new Set(all.map((c) => c.accessKeyId))).toEqual(new Set(["ASIAFIRST"]));
    expect(imds.reads).toHaveLength(2);
  });

  test("waits for a profile that is not there yet, with growing jittered waits and one warning", async () => {
    const clock = fakeClock();
    const { log, lines } = captureLogger();
    const appearsAt = clock.now() + 20_000;
    const imds = new FakeImds({
      [ROLES]: () => (clock.now() >= appearsAt ? "web-role" : undefined),
      [`${ROLES}web-role`]: roleDoc({ expires: appearsAt + 6 * HOUR }),
    });

    const credentials = await credentialsProvider(options(imds, { clock, log, deadlineMs: 60_000 }))();

    expect(credentials.accessKeyId).toBe("ASIAFIRST");
    expect(clock.sleeps[0]).toBe(188); // equal jitter around 250 ms, random 0.5
    expect(Math.max(...clock.sleeps)).toBeLessThanOrEqual(5000);
    expect(clock.sleeps.length).toBeGreaterThan(3);
    expect(lines.filter((l) => l.level === "warn").map((l) => l.msg)).toEqual([
      "still waiting for the instance profile's credentials",
    ]);
  });

  test.each([
    ["no instance profile", {}, /IMDS has no meta-data\/iam\/security-credentials\/ \(no instance profile/],
    ["an empty role list", { [ROLES]: "" }, /lists no role/],
    ["a role without credentials", { [ROLES]: "web-role" }, /no credentials for role web-role/],
    [
      "a failed assume-role",
      { [ROLES]: "web-role", [`${ROLES}web-role`]: JSON.stringify({ Code: "AssumeRoleUnauthorizedAccess" }) },
      /IMDS reports AssumeRoleUnauthorizedAccess for role web-role/,
    ],
    ["a document that is not JSON", { [ROLES]: "web-role", [`${ROLES}web-role`]: "<html>" }, /not JSON/],
    ["an odd role name", { [ROLES]: "../../user-data" }, /odd role name/],
  ])(
    "%s until the deadline: a CredentialsUnavailableError that says what was seen and what to do",
    async (_, items, why) => {
      const imds = new FakeImds(items);
      const o = options(imds, { deadlineMs: 30_000 });

      const error = await credentialsProvider(o)().catch((e: unknown) => e);

      expect(error).toBeInstanceOf(CredentialsUnavailableError);
      const message = (error as Error).message;
      expect(message).toMatch(/^no credentials from the instance profile within the deadline \(waited \d+\.\d s\): /);
      expect(message).toMatch(why);
      expect(message).toMatch(/Attach an instance profile/);
      expect(message).toMatch(/AWS_ACCESS_KEY_ID/);
      expect(o.clock.now()).toBeGreaterThanOrEqual(o.deadline.at);
      expect(imds.reads.every((p) => p.startsWith(ROLES))).toBe(true);
    },
  );

  test("credentials already expired by the instance's clock are waited on, not used", async () => {
    const clock = fakeClock();
    let expires = clock.now() - 60_000;
    const imds = profile(() => roleDoc({ expires }));
    let reads = 0;
    const original = imds.getText.bind(imds);
    imds.getText = (path) => {
      if (path !== ROLES && ++reads === 3) expires = clock.now() + 6 * HOUR; // IMDS rotates them
      return original(path);
    };

    const credentials = await credentialsProvider(options(imds, { clock }))();

    expect(credentials.expiration?.getTime()).toBeGreaterThan(clock.now());
    expect(reads).toBe(3);
  });

  test("an IMDS failure that is no waiting matter (403) ends it at once, with IMDS's words", async () => {
    const imds = new FakeImds();
    imds.getText = () => Promise.reject(new MetadataUnavailableError("IMDS refused GET ... with 403 Forbidden"));
    const o = options(imds);
    const started = o.clock.now();

    await expect(credentialsProvider(o)()).rejects.toThrow(
      /no credentials from the instance profile .*IMDS refused GET \.\.\. with 403 Forbidden\. Attach/,
    );
    expect(o.clock.now()).toBe(started);
  });

  test("after the deadline every further call fails at once with the same error", async () => {
    const controller = new AbortController();
    const clock = fakeClock();
    const imds = new FakeImds();
    const o = { ...options(imds, { clock, deadlineMs: 10_000 }) };
    o.deadline = { at: o.deadline.at, signal: controller.signal };
    const provider = credentialsProvider(o);
    const first = await provider().catch((e: unknown) => e);
    controller.abort(new Error("deadline"));
    const reads = imds.reads.length;

    await expect(provider()).rejects.toBe(first);
    expect(imds.reads).toHaveLength(reads);
  });
});

describe("over the wire", () => {
  test("IMDSv2 only, with the token the world was read with", async () => {
    const emu = await startImdsEmulator({ instance: testInstance() });
    const deadline: Deadline = { at: Date.now() + 10_000, signal: new AbortController().signal };
    const tokens = new ImdsTokenCache();
    const client = (): ImdsClient =>
      new ImdsClient({ endpoint: emu.endpoint, clock: systemClock, deadline, log: silentLogger, tokens });
    try {
      const world = client();
      await world.getText("meta-data/instance-id");
      await world.close();
      const imds = client();
      const credentials = await credentialsProvider({
        env: {},
        imds,
        clock: systemClock,
        deadline,
        log: silentLogger,
      })();
      await imds.close();

      expect(credentials).toMatchObject({
        accessKeyId: DEFAULT_CREDENTIALS.accessKeyId,
        secretAccessKey: DEFAULT_CREDENTIALS.secretAccessKey,
        sessionToken: DEFAULT_CREDENTIALS.sessionToken,
      });
      expect(emu.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.token}`)).toEqual([
        "PUT /latest/api/token 200 none",
        "GET /latest/meta-data/instance-id 200 valid",
        "GET /latest/meta-data/iam/security-credentials/ 200 valid",
        `GET /latest/meta-data/iam/security-credentials/${DEFAULT_ROLE} 200 valid`,
      ]);
    } finally {
      await emu.close();
    }
  });
});
