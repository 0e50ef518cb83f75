// The dns section of the configuration: shared names, reverse records, IPv6 and the reaper, and the mistakes a
// user makes with them, each named by file, line and key path (exit 2 before anything is changed).
import { configSchema } from "../../agent/config/schema";
import { validateFile } from "../../agent/config/validate";

const check = (yaml: string) => validateFile("/etc/bootlace/bootlace.yaml", Buffer.from(yaml));

describe("dns configuration", () => {
  it("takes shared names, reverse records, IPv6 and the reaper, with their defaults", () => {
    const config = configSchema.parse({
      dns: {
        reverse: true,
        reap: true,
        records: [
          {
            zone: "example.internal",
            name: "api.example.internal",
            set_identifier: "{{instance.id}}",
            multivalue: true,
          },
          { zone: "example.internal", name: "www.example.internal", set_identifier: "blue", weight: 200 },
          {
            zone: "example.internal",
            name: "db.example.internal",
            set_identifier: "primary",
            failover: "PRIMARY",
            health_check_id: "8f3a5b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b",
            reverse: false,
          },
          { zone: "example.internal", name: "v6.example.internal", type: "AAAA", value: "ipv6" },
        ],
      },
    });
    expect(config.dns).toMatchObject({ reverse: true, reap: true, wait: "insync" });
    expect(config.dns?.records[3]).toMatchObject({ type: "AAAA", value: "ipv6", takeover: false });
    expect(configSchema.parse({ dns: { records: [] } }).dns).toMatchObject({ reverse: false, reap: false });
  });

  it.each([
    [
      "a policy without set_identifier",
      "  - { zone: z.internal, name: a.z.internal, multivalue: true }",
      /line 3: dns\.records\.0\.multivalue: multivalue needs set_identifier .*set_identifier: "\{\{instance\.id\}\}"/,
    ],
    [
      "set_identifier without a policy",
      "  - { zone: z.internal, name: a.z.internal, set_identifier: blue }",
      /dns\.records\.0\.set_identifier: a record with set_identifier needs a routing policy: multivalue: true, weight or failover/,
    ],
    [
      "two policies",
      "  - { zone: z.internal, name: a.z.internal, set_identifier: b, weight: 1, failover: PRIMARY }",
      /dns\.records\.0: set only one of multivalue, weight or failover, not weight and failover/,
    ],
    [
      "a set identifier that is not one label",
      "  - { zone: z.internal, name: a.z.internal, set_identifier: Blue.1, weight: 1 }",
      /dns\.records\.0\.set_identifier: expected 1-63 lower-case letters, digits, '-' or '_', got "Blue\.1"/,
    ],
    [
      "a weight out of range",
      "  - { zone: z.internal, name: a.z.internal, set_identifier: b, weight: 256 }",
      /dns\.records\.0\.weight: .*255/,
    ],
    [
      "a health check on a simple record",
      "  - { zone: z.internal, name: a.z.internal, health_check_id: abc-123 }",
      /dns\.records\.0\.health_check_id: health_check_id needs set_identifier/,
    ],
    [
      "ipv6 on an A record",
      "  - { zone: z.internal, name: a.z.internal, value: ipv6 }",
      /dns\.records\.0\.value: ipv6 is the instance's IPv6 address: set type: AAAA/,
    ],
    [
      "an IPv4 keyword on an AAAA record",
      "  - { zone: z.internal, name: a.z.internal, type: AAAA, value: private_ipv4 }",
      /dns\.records\.0\.value: private_ipv4 is IPv4; an AAAA record needs ipv6 or an IPv6 address/,
    ],
    [
      "a bad literal IPv6 address",
      "  - { zone: z.internal, name: a.z.internal, type: AAAA, value: 'fd00::g' }",
      /dns\.records\.0\.value: expected ipv6 or an IPv6 address, got "fd00::g"/,
    ],
  ])("refuses %s, naming the file, line and key", async (_label, record, message) => {
    await expect(check(`dns:\n  records:\n${record}\n`)).rejects.toThrow(message);
    await expect(check(`dns:\n  records:\n${record}\n`)).rejects.toThrow(/^\/etc\/bootlace\/bootlace\.yaml, line 3: /);
  });

  it("refuses reverse and reap that are not booleans", async () => {
    await expect(check("dns:\n  reverse: yes please\n")).rejects.toThrow(/line 2: dns\.reverse: /);
    await expect(check("dns:\n  reap: 3\n")).rejects.toThrow(/line 2: dns\.reap: /);
  });
});
