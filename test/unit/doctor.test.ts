// doctor's checks that need no AWS and no IMDS: the clock against a Date, cloud-init's version against the user-data
// form, the unit under a root, the last run, the bound every check runs in. The rest: test/integration/doctor.test.ts.
import { mkdir, mkdtemp, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { systemClock } from "../../agent/core/clock";
import { deadlineAfter } from "../../agent/core/retry";
import { bounded, formatChecks, ok, warn } from "../../agent/doctor/check";
import { cloudInitUserData, cloudInitVersion } from "../../agent/doctor/cloud-init";
import { clockLine } from "../../agent/doctor/credentials";
import { imdsFailure } from "../../agent/doctor/imds";
import { lastRun, unit } from "../../agent/doctor/unit";
import { RootFs } from "../../agent/root/fs";
import type { StateFile } from "../../agent/root/state";

const at = Date.parse("2026-11-21T12:00:00Z");
const date = (ms: number) => new Date(ms).toUTCString();

describe("clock", () => {
  it.each([
    [0, "ok", "within 1 s of AWS"],
    [-45_000, "ok", "within 45 s of AWS"],
    [90_000, "warn", "this clock is 90 s ahead of AWS"],
    [-6 * 60_000, "fail", "this clock is 6 min behind AWS"],
  ])("%d ms off: %s", (offset, status, cause) => {
    const line = clockLine(date(at - offset), at);
    expect(line.status).toBe(status);
    expect(line.cause.startsWith(cause)).toBe(true);
  });

  it("says it could not tell without an answer", () => {
    expect(clockLine(undefined, at)).toMatchObject({ status: "warn", cause: expect.any(String) as string });
  });
});

describe("cloud-init and the user-data form", () => {
  it.each([
    ["23.3.1", "user-data (#bootlace)", "ok"],
    ["23.4", "user-data (#bootlace)", "warn"],
    ["24.1.3", "user-data part 2 (text/x-bootlace)", "warn"],
    ["24.1.3", "user-data (#cloud-config, key bootlace)", "warn"],
    ["24.1.3", "user-data (shell script)", "ok"],
    ["25.1", "/etc/bootlace/bootlace.yaml", "ok"],
  ])("cloud-init %s, %s: %s", (version, source, status) => {
    expect(cloudInitUserData(version, [source]).status).toBe(status);
  });

  it("names the schema for the bootlace: key, and the missing handler for the others", () => {
    expect(cloudInitUserData("24.1", ["user-data (#cloud-config, key bootlace)"]).cause).toMatch(/'bootlace' was/);
    expect(cloudInitUserData("24.1", ["user-data (#bootlace)"]).cause).toMatch(/no handler for user-data/);
  });

  it("reads the installed version from Debian's or another Python's package folder", async () => {
    const root = await mkdtemp(join(tmpdir(), "doctor-"));
    expect(await cloudInitVersion(new RootFs(root))).toBeUndefined();
    await put(root, "/usr/lib/python3.9/site-packages/cloudinit/version.py", "__VERSION__ = '22.2.2'\n");
    expect(await cloudInitVersion(new RootFs(root))).toBe("22.2.2");
  });
});

async function put(root: string, path: string, content: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), content);
}

describe("the unit", () => {
  const unitFile = "[Unit]\nWants=network-online.target\nAfter=network-online.target\n[Service]\nType=oneshot\n";

  it("not installed, installed but not enabled, not ordered, and right", async () => {
    const root = await mkdtemp(join(tmpdir(), "doctor-"));
    const fs = new RootFs(root);
    expect((await unit(fs)).status).toBe("fail");
    await put(root, "/lib/systemd/system/bootlace.service", unitFile.replace("After=network-online.target\n", ""));
    expect(await unit(fs)).toMatchObject({ status: "fail", fix: "systemctl enable bootlace.service" });
    await mkdir(join(root, "etc/systemd/system/multi-user.target.wants"), { recursive: true });
    await symlink(
      "/lib/systemd/system/bootlace.service",
      join(root, "etc/systemd/system/multi-user.target.wants/bootlace.service"),
    );
    expect((await unit(fs)).cause).toMatch(/not ordered after network-online.target/);
    await put(root, "/etc/systemd/system/bootlace.service.d/after.conf", "[Unit]\nAfter=network-online.target\n");
    expect((await unit(fs)).status).toBe("ok");
  });
});

describe("the last run", () => {
  const state = (instance: string, exit: number): StateFile => ({
    version: 1,
    instance_id: instance,
    saved: {},
    run: { started: "t0", finished: "t1", exit_code: exit, changes: 2, failed: exit ? ["dns"] : [], actions: {} },
  });

  it("this instance's, another's (baked into the image), or none", () => {
    expect(lastRun(state("i-1", 0), "i-1")).toMatchObject({ status: "ok", cause: "t1: exit 0, 2 changes" });
    expect(lastRun(state("i-1", 1), "i-1")).toMatchObject({ status: "warn", cause: "t1: exit 1, failed: dns" });
    expect(lastRun(state("i-0", 0), "i-1").cause).toMatch(/^state.json is i-0's, not this instance's/);
    expect(lastRun(undefined, "i-1").status).toBe("ok");
  });
});

describe("IMDS failures", () => {
  it("an IPv6 endpoint that does not answer", () => {
    const line = imdsFailure(new Error("connect EHOSTUNREACH"), { AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE: "IPv6" });
    expect(line.status).toBe("fail");
    expect(line.cause).toMatch(/^AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE is IPv6/);
    expect(line.fix).toMatch(/unset AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE/);
  });
});

describe("bounded", () => {
  const { deadline, end } = deadlineAfter(systemClock, 60);
  afterAll(end);

  it("a check still running at its end is a fail that says so", async () => {
    const lines = await bounded("slow", systemClock, deadline, 200, () => new Promise(() => undefined));
    expect(lines).toEqual([
      expect.objectContaining({ name: "slow", status: "fail", cause: "did not finish within 0.2 s" }),
    ]);
  });

  it("a check that gives up at its own deadline still says why", async () => {
    const lines = await bounded(
      "patient",
      systemClock,
      deadline,
      300,
      (d) =>
        new Promise((resolve) => d.signal.addEventListener("abort", () => resolve(warn("patient", "gave up", "wait")))),
    );
    expect(lines).toEqual([warn("patient", "gave up", "wait")]);
  });

  it("an error is a fail naming it", async () => {
    const lines = await bounded("broken", systemClock, deadline, 1000, () => Promise.reject(new Error("boom")));
    expect(lines[0]).toMatchObject({ status: "fail", cause: "boom" });
  });
});

describe("the report", () => {
  it("text: a line per check, the fix on it, and the counts", () => {
    const text = formatChecks([ok("a", "fine"), warn("b", "odd", "do this")], false);
    expect(text).toBe("ok    a: fine\nwarn  b: odd — fix: do this\n1 ok, 1 warn, 0 fail\n");
  });
});
