// bootlace validate FILE: a configuration document or user-data, told apart by the detector the loader uses.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { loadConfig } from "../../agent/config/load";
import { userDataForm } from "../../agent/config/userdata";
import { validateFile } from "../../agent/config/validate";

const FIXTURES = join(__dirname, "../fixtures");

describe("validateFile (bootlace validate FILE)", () => {
  test("a configuration document", async () => {
    const file = join(FIXTURES, "config/override.yaml");
    expect(await validateFile(file, readFileSync(file))).toEqual({
      kind: "config",
      sources: [file],
      config: { version: 1, watch: { interval: 999 } },
    });
  });

  test("user-data, whose profile may be defined by the AMI's baked file", async () => {
    const result = await validateFile("ud.sh", Buffer.from("#!/bin/sh\nBOOTLACE_PROFILE=web\n"));
    expect(result.kind).toBe("user-data");
    expect(result.sources).toEqual(["user-data (shell script)"]);
  });

  test("MIME user-data with its mistakes", async () => {
    const file = join(FIXTURES, "userdata/mime-bad-address.txt");
    await expect(validateFile(file, readFileSync(file))).rejects.toThrow(
      /^user-data part 2 \(text\/x-bootlace, "bootlace.yaml"\), line 7: dns.records.0.value: /,
    );
  });

  test("a configuration with a mistake names the file", async () => {
    await expect(validateFile("/tmp/c.yaml", Buffer.from("watch:\n  every: 5\n"))).rejects.toThrow(
      "/tmp/c.yaml, line 2: watch.every: unknown key",
    );
  });

  test("a conf.d snippet may choose a profile defined in another file", async () => {
    const result = await validateFile("/etc/bootlace/conf.d/50-web.yaml", Buffer.from("profile: web\n"));
    expect(result).toEqual({ kind: "config", sources: ["/etc/bootlace/conf.d/50-web.yaml"], config: { version: 1 } });
  });

  test("a file that defines profiles must choose one of them", async () => {
    await expect(validateFile("/c.yaml", Buffer.from("profile: db\nprofiles:\n  web: {}\n"))).rejects.toThrow(
      '/c.yaml, line 1: profile: no profile named "db" (known: web)',
    );
  });

  test("user-data without bootlace configuration is reported", async () => {
    await expect(validateFile("ud", Buffer.from("#cloud-config\npackages: [nginx]\n"))).rejects.toThrow(
      "ud: no bootlace configuration in this user-data: user-data (#cloud-config): no write_files entry for " +
        "/etc/bootlace and no bootlace: key",
    );
  });
});

describe("one detector decides what is user-data, for the loader and for validate", () => {
  const root = join(FIXTURES, "config/baked"); // it defines the profile the MIME fixture chooses
  const settings = "watch: {interval: 70}\n";
  // The last three are where validate's own sniffing once disagreed with the loader.
  test.each<[string, Buffer, boolean]>([
    ["#bootlace", Buffer.from(`#bootlace\n${settings}`), true],
    ["#cloud-config with the key", Buffer.from(`#cloud-config\nbootlace:\n  ${settings}`), true],
    ["a shell script", Buffer.from("#!/bin/sh\nBOOTLACE_SET_watch__interval=70\n"), true],
    ["MIME", readFileSync(join(FIXTURES, "userdata/mime-make-mime.txt")), true],
    ["gzip", gzipSync(Buffer.from(`#bootlace\n${settings}`)), true],
    ["a BOM before #bootlace", Buffer.from(`\uFEFF#bootlace\n${settings}`), true],
    ["a plain document", Buffer.from(settings), false],
    [
      "a shell script whose first line is indented",
      Buffer.from("  #!/bin/sh\nBOOTLACE_SET_watch__interval=70\n"),
      true,
    ],
    // cloud-init matches its headers as prefixes (handlers.type_from_starts_with): this is a cloud-config to it.
    [
      "a header that only starts like #cloud-config",
      Buffer.from(`#cloud-configuration\nbootlace:\n  ${settings}`),
      true,
    ],
    ["#bootlace glued to a word", Buffer.from(`#bootlace-ish\n${settings}`), false],
  ])("%s", async (_, bytes, isUserData) => {
    expect(userDataForm(bytes) !== undefined).toBe(isUserData);
    const loaded = await loadConfig({ root, userData: bytes });
    expect(loaded.sources.some((s) => s.startsWith("user-data"))).toBe(isUserData);
    expect((await validateFile("f", bytes)).kind).toBe(isUserData ? "user-data" : "config");
  });
});
