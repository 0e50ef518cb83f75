// The recommended user-data form: cloud-init's write_files puts bootlace's configuration into /etc/bootlace/conf.d;
// bootlace reads it from disk once cloud-init wrote it and from user-data until then. Every other cloud-init form is
// told apart, and `validate` says why one carries no bootlace configuration. jinja templates, as far as offline.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { gzipSync } from "node:zlib";
import { loadConfig } from "../../agent/config/load";
import { renderJinja } from "../../agent/config/jinja";
import { parseUserData, userDataForm } from "../../agent/config/userdata";
import { validateFile } from "../../agent/config/validate";
import { configErrorsIn } from "../../agent/core/errors";

const ud = (text: string): Buffer => Buffer.from(text);

function rootWith(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), "bootlace-cc-"));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

async function errorsOf(run: () => Promise<unknown>): Promise<string[]> {
  try {
    await run();
  } catch (error) {
    const errors = configErrorsIn(error);
    if (errors.length > 0) return errors.map((e) => e.message);
    throw error;
  }
  throw new Error("expected configuration errors");
}

const WRITE_FILES = [
  "#cloud-config",
  "packages: [nginx]",
  "write_files:",
  "  - path: /etc/motd",
  "    content: hello",
  "  - path: /etc/bootlace/conf.d/60-user-data.yaml",
  "    content: |",
  "      profile: web",
  "      watch: { interval: 45 }",
  "",
].join("\n");

describe("write_files into /etc/bootlace/conf.d", () => {
  test("validate reads the file as the loader will, lines counted in the user-data", async () => {
    const result = await validateFile("ud.yaml", ud(WRITE_FILES));
    expect(result.kind).toBe("user-data");
    expect(result.sources).toEqual(["user-data (#cloud-config, write_files /etc/bootlace/conf.d/60-user-data.yaml)"]);
    expect(result.config.watch).toEqual({ interval: 45 });
    const bad = WRITE_FILES.replace("interval: 45", "interval: often");
    await expect(validateFile("ud.yaml", ud(bad))).rejects.toThrow(
      'user-data (#cloud-config, write_files /etc/bootlace/conf.d/60-user-data.yaml), line 9: watch.interval: expected number, got "often"',
    );
  });

  test("at boot: read from user-data while cloud-init has not written it, from disk once it has", async () => {
    const baked = { "etc/bootlace/conf.d/50-image.yaml": "profiles:\n  web: { watch: { interval: 30 } }\n" };
    const before = await loadConfig({ root: rootWith(baked), userData: ud(WRITE_FILES) });
    expect(before.profile).toBe("web");
    expect(before.sources[1]).toBe("user-data (#cloud-config, write_files /etc/bootlace/conf.d/60-user-data.yaml)");
    // A conf.d file is a baked file: the chosen profile sits over it (here the profile's interval wins).
    expect(before.config.watch).toEqual({ interval: 30 });

    const root = rootWith({
      ...baked,
      "etc/bootlace/conf.d/60-user-data.yaml": "profile: web\nwatch: {interval: 50}\n",
    });
    const after = await loadConfig({ root, userData: ud(WRITE_FILES) });
    expect(after.sources[1]).toBe(join(root, "etc/bootlace/conf.d/60-user-data.yaml"));
  });

  test("in name order among the baked conf.d files, and bootlace.yaml first", async () => {
    const userData = ud(
      [
        "#cloud-config",
        "write_files:",
        "  - { path: /etc/bootlace/conf.d/99-last.yaml, content: 'watch: {interval: 99}' }",
        "  - { path: /etc/bootlace/conf.d/10-first.yml, content: 'watch: {interval: 10}' }",
        "",
      ].join("\n"),
    );
    const root = rootWith({ "etc/bootlace/conf.d/50-image.yaml": "watch: {interval: 50}\n" });
    const loaded = await loadConfig({ root, userData });
    expect(loaded.sources).toEqual([
      "user-data (#cloud-config, write_files /etc/bootlace/conf.d/10-first.yml) (lines of the file)",
      join(root, "etc/bootlace/conf.d/50-image.yaml"),
      "user-data (#cloud-config, write_files /etc/bootlace/conf.d/99-last.yaml) (lines of the file)",
    ]);
    expect(loaded.config.watch).toEqual({ interval: 99 });
  });

  test.each([
    ["b64", Buffer.from("watch: {interval: 61}\n").toString("base64")],
    ["base64", Buffer.from("watch: {interval: 61}\n").toString("base64")],
    ["gz+b64", gzipSync("watch: {interval: 61}\n").toString("base64")],
    ["gzip+base64", gzipSync("watch: {interval: 61}\n").toString("base64")],
    ["text/plain", "watch: {interval: 61}"],
  ])("encoding %s is decoded as cloud-init's write-files decodes it", async (encoding, content) => {
    const text = `#cloud-config\nwrite_files:\n  - path: /etc/bootlace/conf.d/60-x.yaml\n    encoding: ${encoding}\n    content: "${content}"\n`;
    expect((await validateFile("ud", ud(text))).config.watch).toEqual({ interval: 61 });
  });

  test("mistakes in the entries are named with their key path", async () => {
    const text = [
      "#cloud-config",
      "write_files:",
      "  - { path: /etc/bootlace/conf.d/60-x.conf, content: 'watch: {}' }",
      "  - { path: /etc/bootlace/conf.d/61-x.yaml, encoding: rot13, content: 'watch: {}' }",
      "  - { path: /etc/bootlace/conf.d/62-x.yaml, source: { uri: 'https://example.com/x' } }",
      "",
    ].join("\n");
    expect(await errorsOf(() => validateFile("ud", ud(text)))).toEqual([
      "user-data (#cloud-config), line 3: write_files.0.path: bootlace would not read /etc/bootlace/conf.d/60-x.conf: " +
        "it reads /etc/bootlace/bootlace.yaml and /etc/bootlace/conf.d/*.yaml (or *.yml)",
    ]);
    const withoutBadPath = text.replace(/^.*60-x.conf.*\n/m, "");
    expect(await errorsOf(() => validateFile("ud", ud(withoutBadPath)))).toEqual([
      expect.stringMatching(/^user-data \(#cloud-config\), line 3: write_files.0.encoding: cloud-init does not know/),
      "user-data (#cloud-config), line 4: write_files.1.source: cloud-init fetches this file's source at boot; " +
        "bootlace cannot read it from user-data",
    ]);
  });

  test("a later cloud-config's write_files replaces an earlier one's: bootlace's files there are never written", async () => {
    const part = (type: string, body: string) => [`--b`, `Content-Type: ${type}`, "", body].join("\n");
    const mime = [
      'Content-Type: multipart/mixed; boundary="b"',
      "MIME-Version: 1.0",
      "",
      part("text/cloud-config", WRITE_FILES),
      part("text/cloud-config", "#cloud-config\nwrite_files:\n  - { path: /etc/app.conf, content: x }\n"),
      "--b--",
      "",
    ].join("\n");
    expect(await errorsOf(() => validateFile("ud", ud(mime)))).toEqual([
      "user-data part 1 (text/cloud-config), line 6: write_files.1: cloud-init never writes " +
        "/etc/bootlace/conf.d/60-user-data.yaml: a later cloud-config's write_files (user-data part 2 " +
        "(text/cloud-config, write_files), line 3) replaces this list whole; put every write_files entry in one " +
        "cloud-config",
    ]);
    // With merge rules of its own, cloud-init may keep both: bootlace does not guess.
    const merged = mime.replace("packages: [nginx]", "merge_how: 'list(append)+dict()+str()'");
    expect(await errorsOf(() => validateFile("ud", ud(merged)))).toEqual([
      expect.stringMatching(/sets cloud-init's merge rules .* bootlace cannot tell whether cloud-init writes/),
    ]);
  });
});

describe("## template: jinja", () => {
  test("raw blocks and comments render as jinja renders them with trim_blocks", () => {
    const r = renderJinja(
      "## template: jinja\na: {% raw %}{{x}}{% endraw %}\n{# note #}\nb: |\n  {% raw %}\n  y\n  {% endraw %}\nc\n",
    );
    expect(r).toMatchObject({ text: "a: {{x}}b: |\n  \n  y\n  c\n", expressions: [] });
  });

  test("expressions become placeholders, statements are not rendered", () => {
    const r = renderJinja("## template: jinja\n#cloud-config\nfqdn: {{ v1.local_hostname }}.example\n");
    expect(r).toMatchObject({ text: "#cloud-config\nfqdn: __cloud_init_jinja_0__.example\n" });
    expect(renderJinja("## template: jinja\n{% if v1.region %}x{% endif %}\n")).toEqual({
      why: "{% if v1.region %} is a jinja statement, which only cloud-init can render",
      line: 2,
    });
  });

  const JINJA = [
    "## template: jinja",
    "#cloud-config",
    "fqdn: web-{{ v1.region }}.example.internal",
    "write_files:",
    "  - path: /etc/bootlace/conf.d/60-user-data.yaml",
    "    content: |",
    "      dns:",
    "        records:",
    '          - { zone: example.internal, name: "{% raw %}{{instance.id}}{% endraw %}.example.internal" }',
    "",
  ].join("\n");

  test("a jinja cloud-config's files are read, with lines in the template", async () => {
    const result = await validateFile("ud", ud(JINJA));
    expect(result.sources).toEqual([
      "user-data (## template: jinja, #cloud-config, write_files /etc/bootlace/conf.d/60-user-data.yaml)",
    ]);
    expect(result.config.dns?.records[0]?.name).toBe("{{instance.id}}.example.internal");
    const bad = JINJA.replace("zone: example.internal", "zone: 7");
    expect(await errorsOf(() => validateFile("ud", ud(bad)))).toEqual([
      expect.stringMatching(/write_files \/etc\/bootlace\/conf.d\/60-user-data.yaml\), line 9: dns.records.0.zone/),
    ]);
  });

  test("bootlace's templates outside {% raw %}: cloud-init would drop the document", async () => {
    const bare = JINJA.replace("{% raw %}{{instance.id}}{% endraw %}", "{{instance.id}}");
    expect(await errorsOf(() => validateFile("ud", ud(bare)))).toEqual([
      "user-data (## template: jinja), line 9: {{instance.id}} is one of bootlace's templates, but cloud-init " +
        "renders this document with jinja first (a name it does not know drops the whole document, with a warning): " +
        "write {% raw %}{{instance.id}}{% endraw %}",
    ]);
  });

  test("cloud-init's own expressions inside bootlace's configuration: why it cannot be read", async () => {
    const dynamic = JINJA.replace("zone: example.internal", "zone: '{{ v1.region }}.internal'");
    expect(await errorsOf(() => validateFile("ud", ud(dynamic)))).toEqual([
      "user-data (## template: jinja, #cloud-config, write_files /etc/bootlace/conf.d/60-user-data.yaml), line 9: " +
        "{{ v1.region }} is rendered by cloud-init from its instance data at boot, so bootlace cannot read this " +
        "configuration from the user-data; keep jinja out of bootlace's configuration (bootlace's own templates, " +
        "{{instance.id}} and the like, read the same data)",
    ]);
  });

  test("the older bootlace: key in a jinja cloud-config is read, no longer ignored", async () => {
    const text =
      "## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\nbootlace:\n  watch: {interval: 33}\n";
    const result = await validateFile("ud", ud(text));
    expect(result.sources).toEqual(["user-data (## template: jinja, #cloud-config, key bootlace)"]);
    expect(result.config.watch).toEqual({ interval: 33 });
    const loaded = await loadConfig({ root: rootWith({}), userData: ud(text) });
    expect(loaded.config.watch).toEqual({ interval: 33 });
  });

  test("a template bootlace cannot render: an error when it concerns bootlace, else none of its business", async () => {
    const ifs =
      "## template: jinja\n#cloud-config\n{% if v1.region == 'eu-west-1' %}\nbootlace:\n  watch: {interval: 33}\n{% endif %}\n";
    expect(await errorsOf(() => validateFile("ud", ud(ifs)))).toEqual([
      "user-data (## template: jinja), line 3: cannot render this template offline: {% if v1.region == 'eu-west-1' %} " +
        "is a jinja statement, which only cloud-init can render; keep bootlace's configuration out of jinja",
    ]);
    const other = "## template: jinja\n#cloud-config\n{% if v1.region %}\npackages: [nginx]\n{% endif %}\n";
    expect(parseUserData(ud(other))).toEqual({ files: [], documents: [], sets: [] });
  });

  test("a file written by a template bootlace cannot render: from disk at boot; an error where it would be needed", async () => {
    const text = [
      "## template: jinja",
      "#cloud-config",
      "write_files:",
      "{% if v1.region == 'eu-west-1' %}",
      "  - { path: /etc/bootlace/conf.d/60-eu.yaml, content: 'watch: {interval: 40}' }",
      "{% endif %}",
      "",
    ].join("\n");
    const why =
      "user-data (## template: jinja), line 4: cannot render this template offline: {% if v1.region == 'eu-west-1' %} " +
      "is a jinja statement, which only cloud-init can render; keep bootlace's configuration out of jinja";
    expect(await errorsOf(() => validateFile("ud", ud(text)))).toEqual([why]);
    expect(await errorsOf(() => loadConfig({ root: rootWith({}), userData: ud(text) }))).toEqual([why]);
    const root = rootWith({ "etc/bootlace/conf.d/60-eu.yaml": "watch: {interval: 40}\n" });
    expect((await loadConfig({ root, userData: ud(text) })).config.watch).toEqual({ interval: 40 });
  });
});

describe("every cloud-init form: user-data, and `no bootlace configuration` when it carries none", () => {
  test.each<[string, Buffer, RegExp]>([
    ["#include", ud("#include\nhttps://example.com/a.yaml\n"), /user-data \(#include\): cloud-init fetches the URLs/],
    ["#include-once", ud("#include-once\nhttps://example.com/a\n"), /\(#include-once\): cloud-init fetches/],
    ["#cloud-boothook", ud("#cloud-boothook\n#!/bin/sh\necho hi\n"), /\(#cloud-boothook\): a boothook/],
    ["#part-handler", ud("#part-handler\ndef list_types():\n  return []\n"), /\(#part-handler\): a part handler/],
    ["#cloud-config-jsonp", ud('#cloud-config-jsonp\n[{"op": "add"}]\n'), /\(#cloud-config-jsonp\): a JSON patch/],
    [
      "## template: jinja",
      ud("## template: jinja\n#cloud-config\nhostname: {{ v1.local_hostname }}\n"),
      /\(## template: jinja, #cloud-config\): no write_files entry for \/etc\/bootlace and no bootlace: key/,
    ],
    [
      "#cloud-config-archive",
      ud("#cloud-config-archive\n- type: text/cloud-config\n  content: 'packages: [nginx]'\n"),
      /user-data part 1 \(text\/cloud-config\): no write_files/,
    ],
    ["#cloud-config", ud("#cloud-config\npackages: [nginx]\n"), /\(#cloud-config\): no write_files entry/],
    ["a shell script", ud("#!/bin/sh\necho hi\n"), /user-data \(shell script\): no BOOTLACE_ lines/],
    ["binary", Buffer.from([0x80, 0x81, 0xfe, 0xff, 0x00]), /user-data \(binary\): binary data, not UTF-8 text/],
    ["gzip of #include", gzipSync("#include\nhttps://example.com/a\n"), /\(#include\): cloud-init fetches/],
    ["gzip inside gzip", gzipSync(gzipSync("#cloud-config\n")), /gzip inside gzip/],
    [
      "a MIME part cloud-init fetches",
      ud(
        'Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n--b\nContent-Type: text/x-include-url\n\nhttps://example.com/x\n--b--\n',
      ),
      /user-data part 1 \(text\/x-include-url\): not a type bootlace reads/,
    ],
  ])("%s", async (_, bytes, message) => {
    expect(userDataForm(bytes)).toBeDefined();
    const errors = await errorsOf(() => validateFile("ud", bytes));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^ud: no bootlace configuration in this user-data: /);
    expect(errors[0]).toMatch(message);
    // At boot, the same user-data is no configuration and no error.
    expect(await loadConfig({ root: rootWith({}), userData: bytes })).toMatchObject({ sources: [] });
  });

  test("a #cloud-config-archive part that writes bootlace's file is read", async () => {
    const text = [
      "#cloud-config-archive",
      "- type: text/cloud-config",
      "  content: |",
      "    #cloud-config",
      "    write_files:",
      "      - { path: /etc/bootlace/conf.d/60-x.yaml, content: 'watch: {interval: 71}' }",
      '- "#!/bin/sh\\nBOOTLACE_SET_dns__wait=none\\n"',
      "",
    ].join("\n");
    const result = await validateFile("ud", ud(text));
    expect(result.config.watch).toEqual({ interval: 71 });
    expect(result.config.dns?.wait).toBe("none");
  });

  test("leading blank lines and case, as cloud-init reads its headers", () => {
    expect(userDataForm(ud("\n\n  #Cloud-Config\nbootlace: {}\n"))).toBe("#cloud-config");
    expect(userDataForm(ud("## Template: Jinja\n#cloud-config\n"))).toBe("## template: jinja");
    // No longer a header cloud-init knows (upstart is gone): a configuration document, to validate.
    expect(userDataForm(ud("#upstart-job\nstart on x\n"))).toBeUndefined();
  });
});
