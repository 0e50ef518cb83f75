// The agent as a whole: many agents in one process, IMDS trouble at boot, and user-data in each form it can take.
import { gzipSync } from "node:zlib";
import { runAgent } from "../../agent/agent";
import type { ImdsEmulator, ImdsEmulatorOptions } from "../harness/imds-emulator";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { TEST_CREDENTIALS, startWorld } from "../harness/world";

jest.setTimeout(120_000);

let world: World;
let vpcId: string;
let zoneId: string;

beforeAll(async () => {
  world = await startWorld({ route53PendingMs: 300 });
  ({ vpcId } = await world.createVpc("10.30.0.0/16"));
  zoneId = await world.createHostedZone("agents.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

const recordFor = (label: string) =>
  `dns:\n  records:\n    - { zone: agents.internal, name: '${label}-{{instance.id}}.agents.internal' }\n`;

async function boot(userData: string | Buffer, opts: Omit<ImdsEmulatorOptions, "instance"> = {}) {
  const instance = await world.launchInstance({ vpcId, tags: { Role: "app" } });
  const imds = await world.startImds({ ...instance, userData }, opts);
  return { instance, imds, root: await makeRoot() };
}

async function aRecord(name: string): Promise<string[] | undefined> {
  return (await world.listRecords(zoneId)).find((r) => r.name === name && r.type === "A")?.values;
}

const bundle = (args: string[], imds: ImdsEmulator, root: string) =>
  runBootlace(args, { imds: imds.endpoint, aws: world.proxy.endpoint, root });

describe("in-process agents", () => {
  it("runs many agents at once in one process, each with its own endpoints, credentials and root", async () => {
    const booted = await Promise.all([1, 2, 3, 4, 5].map(() => boot(`#bootlace\n${recordFor("fleet")}`)));

    const results = await Promise.all(
      booted.map(async ({ imds, root }) => {
        let stdout = "";
        let stderr = "";
        const code = await runAgent({
          argv: ["run", "--root", root, "--json"],
          env: { AWS_EC2_METADATA_SERVICE_ENDPOINT: imds.endpoint, AWS_ENDPOINT_URL: world.proxy.endpoint },
          credentials: () => Promise.resolve(TEST_CREDENTIALS),
          stdout: (t) => (stdout += t),
          stderr: (t) => (stderr += t),
        });
        return { code, stdout, stderr };
      }),
    );

    for (const r of results) {
      expect(r.stderr).not.toContain("error");
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ changes: 1, failed: 0 });
    }
    for (const { instance } of booted) {
      expect(await aRecord(`fleet-${instance.instanceId}.agents.internal.`)).toEqual([instance.privateIpv4]);
    }
  });
});

describe("logs", () => {
  it("--log-format json writes one JSON object per line to stderr, each action with its duration", async () => {
    const { imds, root } = await boot(`#bootlace\n${recordFor("jsonlog")}`);

    const result = await runBootlace(["run", "--log-format", "json"], {
      imds: imds.endpoint,
      aws: world.proxy.endpoint,
      root,
    });

    expect(result.code).toBe(0);
    const lines = result.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) {
      expect(typeof line.time).toBe("string");
      expect(line.level).toBe("info");
    }
    const dns = lines.find((l) => l.action === "dns" && l.changes === 1);
    expect(typeof dns?.ms).toBe("number");
  });
});

describe("the metadata service at boot", () => {
  it("waits for a metadata service that starts late, then wires the instance", async () => {
    const { instance, imds, root } = await boot(`#bootlace\n${recordFor("late")}`, {
      availableAfterMs: 1500,
      unavailableMode: "refuse",
    });

    const result = await bundle(["run"], imds, root);

    expect(result.code).toBe(0);
    expect(await aRecord(`late-${instance.instanceId}.agents.internal.`)).toEqual([instance.privateIpv4]);
  });

  it("exits 3 with a clear message when the metadata service never answers within the deadline", async () => {
    const { imds, root } = await boot("", { availableAfterMs: 600_000, unavailableMode: "503" });
    const started = Date.now();

    const result = await bundle(["run", "--deadline", "3"], imds, root);

    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/metadata/i);
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it("exits 3 at once when the metadata service is disabled (403), naming the cause", async () => {
    const { imds, root } = await boot("");
    imds.setDisabled(true);

    const result = await bundle(["run"], imds, root);

    expect(result.code).toBe(3);
    expect(result.stderr).toContain("HttpEndpoint=disabled");
  });

  it("never sends a metadata request without a token", async () => {
    const { imds, root } = await boot(`#bootlace\n${recordFor("token")}`);
    imds.expireAllTokens();

    const result = await bundle(["run"], imds, root);

    expect(result.code).toBe(0);
    expect(imds.requests.filter((r) => r.method === "GET" && r.token === "none")).toEqual([]);
  });
});

describe("user-data forms, end to end", () => {
  const mime = (parts: [string, string][]): string => {
    const boundary = "===============1234567890==";
    return [
      `Content-Type: multipart/mixed; boundary="${boundary}"`,
      "MIME-Version: 1.0",
      "",
      ...parts.flatMap(([type, body], i) => [
        `--${boundary}`,
        `Content-Type: ${type}; charset="us-ascii"`,
        "MIME-Version: 1.0",
        "Content-Transfer-Encoding: 7bit",
        `Content-Disposition: attachment; filename="part-${i + 1}"`,
        "",
        body,
      ]),
      `--${boundary}--`,
      "",
    ].join("\n");
  };

  const forms: [string, (label: string) => string | Buffer][] = [
    [
      "#cloud-config writing bootlace's file with write_files (not written yet: read from user-data)",
      (l) =>
        "#cloud-config\npackages: [nginx]\nwrite_files:\n  - path: /etc/bootlace/conf.d/60-user-data.yaml\n" +
        `    content: |\n      ${recordFor(l).replace(/\n(?=.)/g, "\n      ")}`,
    ],
    [
      "## template: jinja cloud-config writing bootlace's file",
      (l) =>
        "## template: jinja\n#cloud-config\nfqdn: web.{{ v1.region }}.internal\nwrite_files:\n" +
        "  - path: /etc/bootlace/conf.d/60-user-data.yaml\n    content: |\n      " +
        recordFor(l)
          .replace(/\{\{instance\.id\}\}/g, "{% raw %}{{instance.id}}{% endraw %}")
          .replace(/\n(?=.)/g, "\n      "),
    ],
    ["#bootlace YAML", (l) => `#bootlace\n${recordFor(l)}`],
    [
      "#bootlace JSON",
      (l) =>
        `#bootlace\n${JSON.stringify({ dns: { records: [{ zone: "agents.internal", name: `${l}-{{instance.id}}.agents.internal` }] } })}`,
    ],
    [
      "#cloud-config with a bootlace key",
      (l) => `#cloud-config\npackages: [nginx]\nbootlace:\n  ${recordFor(l).replace(/\n(?=.)/g, "\n  ")}`,
    ],
    [
      "MIME multipart with a text/x-bootlace part beside a shell script",
      (l) =>
        mime([
          ["text/x-shellscript", "#!/bin/sh\necho hello\n"],
          ["text/x-bootlace", recordFor(l)],
        ]),
    ],
    [
      "a shell script with BOOTLACE_SET flags",
      (l) =>
        [
          "#!/bin/bash",
          "export BOOTLACE_SET_dns__records__0__zone=agents.internal",
          `BOOTLACE_SET_dns__records__0__name="${l}-{{instance.id}}.agents.internal"`,
          "yum -y install httpd",
        ].join("\n"),
    ],
    ["gzip of a #bootlace document", (l) => gzipSync(Buffer.from(`#bootlace\n${recordFor(l)}`))],
  ];

  it.each(forms)("%s", async (_label, make) => {
    const label = `form${forms.findIndex(([l]) => l === _label)}`;
    const { instance, imds, root } = await boot(make(label));

    const result = await bundle(["run"], imds, root);

    expect(result.stderr).not.toContain("error");
    expect(result.code).toBe(0);
    expect(await aRecord(`${label}-${instance.instanceId}.agents.internal.`)).toEqual([instance.privateIpv4]);
  });

  it("treats user-data without bootlace configuration as none, not as an error", async () => {
    const { imds, root } = await boot("#!/bin/sh\necho just a script\n");
    world.proxy.resetCalls();

    const result = await bundle(["run", "--json"], imds, root);

    expect(result.code).toBe(0);
    expect(result.json).toMatchObject({ changes: 0, actions: [] });
    expect(world.proxy.calls).toEqual([]);
  });
});
