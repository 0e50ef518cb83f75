// User-data as cloud-init's own `cloud-init devel make-mime` writes it (test/fixtures/cloud-init, made by its make.sh):
// the committed fixtures are what make-mime makes of the committed parts, the bundle's `validate` accepts them, and
// the effective configuration is what the parts say over the baked profile.
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../../agent/config/load";
import { REPO_ROOT, runBootlace } from "../harness/run-bundle";
import { haveTool, run } from "../support/tools";

jest.setTimeout(120_000);

const DIR = join(REPO_ROOT, "test/fixtures/cloud-init");
const BAKED = join(DIR, "baked");
const fixture = (name: string): Buffer => readFileSync(join(DIR, name));
// The recommended form first; the other two are older forms cloud-init now warns about (docs/user-data.md).
const FIXTURES = ["make-mime-write-files.txt", "make-mime-x-bootlace.txt", "make-mime-cloud-config.txt"];
// make-mime draws the boundary at random (Python's email package): ===============<19 digits>==
const sameBoundary = (text: string): string => text.replace(/===============\d+==/g, "BOUNDARY");

describe("MIME user-data made by cloud-init devel make-mime", () => {
  const canMake = haveTool("apt-get", "Debian's apt, to fetch the cloud-init package");
  (canMake ? it : it.skip)("the committed fixtures are what make-mime makes of the parts today", () => {
    const fresh = mkdtempSync(join(tmpdir(), "bootlace-make-mime-"));
    run("bash", [join(DIR, "make.sh"), fresh]);
    for (const name of FIXTURES) {
      const made = readFileSync(join(fresh, name), "utf8");
      expect(made).toMatch(/^Content-Type: multipart\/mixed; boundary="===============\d+=="/);
      expect([name, sameBoundary(made)]).toEqual([name, sameBoundary(fixture(name).toString("utf8"))]);
    }
  });

  it.each(FIXTURES)("bootlace validate accepts %s and names the parts it read", async (name) => {
    const result = await runBootlace(["validate", join(DIR, name)], {
      imds: "http://127.0.0.1:9",
      aws: "http://127.0.0.1:9",
      root: BAKED,
    });
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("valid user-data");
    expect(result.stdout).toContain('text/x-shellscript, "boot.sh"');
  });

  it("cloud-config part writing bootlace's file + shell script: the file's record, the script's settings", async () => {
    const loaded = await loadConfig({ root: BAKED, userData: fixture("make-mime-write-files.txt") });
    expect(loaded.sources).toEqual([
      join(BAKED, "etc/bootlace/bootlace.yaml"),
      'user-data part 1 (text/cloud-config, "cloud-write-files.yaml", write_files /etc/bootlace/conf.d/60-user-data.yaml)',
      'user-data part 2 (text/x-shellscript, "boot.sh")',
    ]);
    expect(loaded.profile).toBe("web");
    expect(loaded.config.elastic_ip).toEqual({ pool: { tags: { Pool: "web" } }, allow_reassociation: false });
    expect(loaded.config.load_balancer).toMatchObject({ target_groups: [{ name: "web" }], wait_healthy: 120 });
    expect(loaded.config.dns?.records).toEqual([
      expect.objectContaining({
        zone: "example.internal",
        private: true,
        name: "{{instance.id}}.example.internal",
        delete_on_shutdown: true,
        ttl: 30,
      }),
    ]);
  });

  it("text/x-bootlace part + shell script: the part's record, the script's settings, the baked profile", async () => {
    const loaded = await loadConfig({ root: BAKED, userData: fixture("make-mime-x-bootlace.txt") });
    expect(loaded.profile).toBe("web");
    expect(loaded.config.elastic_ip).toEqual({ pool: { tags: { Pool: "web" } }, allow_reassociation: false });
    expect(loaded.config.load_balancer).toMatchObject({ target_groups: [{ name: "web" }], wait_healthy: 120 });
    expect(loaded.config.dns?.records).toEqual([
      expect.objectContaining({
        zone: "example.internal",
        private: true,
        name: "{{instance.id}}.example.internal",
        delete_on_shutdown: true,
        ttl: 30,
      }),
    ]);
  });

  it("cloud-config part with a bootlace key + shell script", async () => {
    const loaded = await loadConfig({ root: BAKED, userData: fixture("make-mime-cloud-config.txt") });
    expect(loaded.profile).toBe("web");
    expect(loaded.config.load_balancer).toMatchObject({ target_groups: [{ name: "web" }], wait_healthy: 120 });
    expect(loaded.config.dns?.records).toEqual([
      expect.objectContaining({ name: "web-{{tags.Env}}.example.internal", private: true, ttl: 30 }),
    ]);
  });
});
