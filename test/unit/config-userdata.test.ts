// User-data in every form: which documents, sets and profile bootlace finds, under which labels, and what it refuses.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { ConfigErrors } from "../../agent/core/errors";
import { parseUserData } from "../../agent/config/userdata";
import type { UserDataConfig } from "../../agent/config/userdata";
import { locate, toPlain } from "../../agent/config/merge";
import type { PathSegment } from "../../agent/config/merge";
import type { SourceDocument } from "../../agent/config/sources";

const fixture = (name: string) => readFileSync(join(__dirname, "../fixtures/userdata", name));

function errorsOf(raw: Buffer): string[] {
  try {
    parseUserData(raw);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigErrors);
    return (error as ConfigErrors).errors.map((e) => e.message);
  }
  throw new Error("expected parseUserData to throw");
}

const valueOf = (d: SourceDocument | undefined) => d && toPlain(d.tree);
const lineOf = (d: SourceDocument | undefined, path: PathSegment[]) => d && locate(d.tree, path).line;

const summary = (u: UserDataConfig) => ({
  labels: u.documents.map((d) => d.label),
  values: u.documents.map(valueOf),
  sets: u.sets.map((s) => [s.path, s.value, s.where.source, s.where.line]),
  profile: u.profile && [u.profile.name, u.profile.where.source, u.profile.where.line],
});

const BOOTLACE = "#bootlace\nprofile: web\ndns:\n  wait: none\n";
const CLOUD_CONFIG = "#cloud-config\npackages: [nginx]\nbootlace:\n  profile: web\n  watch:\n    interval: 90\n";
const SHELL = [
  "#!/bin/bash",
  'export BOOTLACE_PROFILE="web"',
  "BOOTLACE_SET_elastic_ip__pool__tags__Pool=root",
  "  export BOOTLACE_SET_dns__records__0__ttl='30'",
  "BOOTLACE_SET_load_balancer__deregister_on_shutdown=false # trailing comment",
  "echo BOOTLACE_SET_not__an__assignment=1",
  "BOOTLACE_VERSION=1.2.3",
].join("\n");

describe("#bootlace documents", () => {
  test.each([
    ["plain", Buffer.from(BOOTLACE)],
    ["gzipped", gzipSync(Buffer.from(BOOTLACE))],
    ["CRLF line ends", Buffer.from(BOOTLACE.replace(/\n/g, "\r\n"))],
  ])("%s", (_, raw) => {
    const u = parseUserData(raw);
    expect(summary(u)).toEqual({
      labels: ["user-data (#bootlace)"],
      values: [{ profile: "web", dns: { wait: "none" } }],
      sets: [],
      profile: undefined,
    });
  });

  test("JSON after the #bootlace line", () => {
    const u = parseUserData(Buffer.from('#bootlace\n{"dns": {"wait": "none"}, "watch": {"interval": 70}}\n'));
    expect(valueOf(u.documents[0])).toEqual({ dns: { wait: "none" }, watch: { interval: 70 } });
  });

  test("lines count from the #bootlace line", () => {
    const u = parseUserData(Buffer.from(BOOTLACE));
    expect(lineOf(u.documents[0], ["dns", "wait"])).toBe(4);
    expect(lineOf(u.documents[0], ["profile"])).toBe(2);
  });

  test("broken YAML names the source and line", () => {
    expect(errorsOf(Buffer.from("#bootlace\ndns:\n  wait: none\n records: x\n"))).toEqual([
      "user-data (#bootlace), line 4: YAML: All mapping items must start at the same column",
    ]);
  });

  test("a key given twice is a YAML error on the second", () => {
    expect(errorsOf(Buffer.from("#bootlace\ndns:\n  wait: none\n  wait: insync\n"))).toEqual([
      "user-data (#bootlace), line 4: YAML: Map keys must be unique",
    ]);
  });

  test("a list at the top level is refused", () => {
    expect(errorsOf(Buffer.from("#bootlace\n- dns\n"))).toEqual([
      expect.stringMatching(/^user-data \(#bootlace\), line 2: expected a mapping of bootlace settings, got a list/),
    ]);
  });
});

describe("#cloud-config with a bootlace key", () => {
  test.each([
    ["plain", Buffer.from(CLOUD_CONFIG)],
    ["gzipped", gzipSync(Buffer.from(CLOUD_CONFIG))],
  ])("%s: only the bootlace key is read", (_, raw) => {
    const u = parseUserData(raw);
    expect(summary(u).labels).toEqual(["user-data (#cloud-config, key bootlace)"]);
    expect(valueOf(u.documents[0])).toEqual({ profile: "web", watch: { interval: 90 } });
    expect(lineOf(u.documents[0], ["watch", "interval"])).toBe(6);
  });

  test("no bootlace key: no configuration, even when the rest is YAML bootlace cannot read", () => {
    expect(parseUserData(Buffer.from("#cloud-config\npackages: [nginx]\n")).documents).toEqual([]);
    expect(parseUserData(Buffer.from("#cloud-config\nruncmd:\n  - [ a\n")).documents).toEqual([]);
  });

  test("broken YAML with a bootlace key is reported", () => {
    expect(errorsOf(Buffer.from("#cloud-config\nbootlace:\n  dns: [\n"))).toEqual([
      expect.stringMatching(/^user-data \(#cloud-config, key bootlace\), line \d: YAML: /),
    ]);
  });
});

describe("shell scripts", () => {
  test.each([
    ["plain", Buffer.from(SHELL)],
    ["gzipped", gzipSync(Buffer.from(SHELL))],
  ])("%s: BOOTLACE_PROFILE and BOOTLACE_SET_ lines, export and quotes", (_, raw) => {
    const u = parseUserData(raw);
    const source = "user-data (shell script)";
    expect(summary(u)).toEqual({
      labels: [],
      values: [],
      sets: [
        ["elastic_ip.pool.tags.Pool", "root", source, 3],
        ["dns.records.0.ttl", 30, source, 4],
        ["load_balancer.deregister_on_shutdown", false, source, 5],
      ],
      profile: ["web", source, 2],
    });
  });

  test("a value the shell would expand is refused, naming the line", () => {
    expect(errorsOf(Buffer.from("#!/bin/sh\n\nBOOTLACE_SET_dns__owner_id=$(hostname)\n"))).toEqual([
      expect.stringMatching(/^user-data \(shell script\), line 3: BOOTLACE_SET_dns__owner_id: .*expand/),
    ]);
  });

  test("an empty key in the path is refused", () => {
    expect(errorsOf(Buffer.from("#!/bin/sh\nBOOTLACE_SET_dns____wait=none\n"))).toEqual([
      expect.stringMatching(/^user-data \(shell script\), line 2: BOOTLACE_SET_dns____wait: empty key in path/),
    ]);
  });

  test("a script without BOOTLACE_ lines is no configuration", () => {
    expect(summary(parseUserData(Buffer.from("#!/bin/sh\necho hello\n")))).toEqual({
      labels: [],
      values: [],
      sets: [],
      profile: undefined,
    });
  });
});

describe("anything else is no configuration", () => {
  test.each([
    ["empty", Buffer.alloc(0)],
    ["text", Buffer.from("hello world\n")],
    ["cloud-boothook", Buffer.from("#cloud-boothook\necho hi\n")],
    ["binary", Buffer.from([0, 1, 2, 3, 255])],
  ])("%s", (_, raw) => {
    expect(parseUserData(raw)).toEqual({ files: [], documents: [], sets: [] });
  });

  test("corrupt gzip is an error", () => {
    const gz = gzipSync(Buffer.from(BOOTLACE)).subarray(0, 12);
    expect(errorsOf(gz)).toEqual([expect.stringMatching(/^user-data: cannot decompress gzip data/)]);
  });
});

describe("MIME multipart (fixtures made with python's email.mime, as cloud-init's make-mime does)", () => {
  test("make-mime output: the text/x-bootlace part and the shell script part", () => {
    const u = parseUserData(fixture("mime-make-mime.txt"));
    expect(summary(u)).toEqual({
      labels: ['user-data part 2 (text/x-bootlace, "bootlace.yaml")'],
      values: [
        {
          profile: "web",
          dns: {
            wait: "none",
            records: [{ zone: "example.internal", name: "{{instance.id}}.example.internal", ttl: 30 }],
          },
        },
      ],
      sets: [
        ["elastic_ip.pool.tags.Pool", "root", 'user-data part 3 (text/x-shellscript, "boot.sh")', 3],
        ["dns.records.0.ttl", 45, 'user-data part 3 (text/x-shellscript, "boot.sh")', 4],
      ],
      profile: undefined,
    });
    // Lines count within the part's decoded body.
    expect(lineOf(u.documents[0], ["dns", "records", 0, "ttl"])).toBe(8);
  });

  test.each([
    ["gzipped whole", (b: Buffer) => gzipSync(b)],
    ["CRLF line ends", (b: Buffer) => Buffer.from(b.toString("latin1").replace(/\n/g, "\r\n"), "latin1")],
  ])("make-mime output, %s", (_, transform) => {
    const u = parseUserData(transform(fixture("mime-make-mime.txt")));
    expect(summary(u).labels).toEqual(['user-data part 2 (text/x-bootlace, "bootlace.yaml")']);
    expect(u.sets).toHaveLength(2);
  });

  test("7bit, 8bit, quoted-printable and base64 parts", () => {
    const u = parseUserData(fixture("mime-encodings.txt"));
    expect(summary(u)).toEqual({
      labels: [
        'user-data part 1 (text/cloud-config, "cc.yaml", key bootlace)',
        "user-data part 2 (text/x-bootlace)",
        'user-data part 3 (text/x-bootlace, "qp.yaml")',
      ],
      values: [
        { dns: { wait: "none" } },
        { watch: { interval: 90 } },
        {
          files: [
            {
              path: "/etc/motd",
              block: "Welcome = café — a line long enough to be folded by quoted-printable encoding",
            },
          ],
        },
      ],
      sets: [],
      profile: ["web", 'user-data part 4 (text/x-shellscript, "profile.sh")', 2],
    });
  });

  test("nested multiparts are numbered 2.1, 2.2; a text/plain part is read by its first line", () => {
    const u = parseUserData(fixture("mime-nested.txt"));
    expect(summary(u).labels).toEqual([
      'user-data part 2.2 (text/x-bootlace, "nested.yaml")',
      'user-data part 3 (text/plain, "plain.txt", #bootlace)',
    ]);
    expect(valueOf(u.documents[1])).toEqual({ watch: { interval: 120 } });
  });

  test("gzip-compressed parts: a text/x-bootlace body and an application/x-gzip shell script", () => {
    const u = parseUserData(fixture("mime-gzip-parts.txt"));
    expect(summary(u).labels).toEqual(['user-data part 1 (text/x-bootlace, "bootlace.yaml.gz")']);
    expect(u.sets.map((s) => [s.path, s.where.source])).toEqual([
      ["elastic_ip.pool.tags.Pool", 'user-data part 2 (application/x-gzip, "boot.sh.gz", shell script)'],
      ["dns.records.0.ttl", 'user-data part 2 (application/x-gzip, "boot.sh.gz", shell script)'],
    ]);
  });

  test("a part without the bootlace key and without our type is ignored", () => {
    const raw = Buffer.from(
      [
        'Content-Type: multipart/mixed; boundary="b"',
        "MIME-Version: 1.0",
        "",
        "--b",
        "Content-Type: text/x-include-url",
        "",
        "https://example.com/x",
        "--b--",
        "",
      ].join("\n"),
    );
    expect(parseUserData(raw)).toEqual({ files: [], documents: [], sets: [] });
  });

  test("hand-written MIME: preamble, folded and upper-case headers, RFC 2231 filename, latin-1, no closing line", () => {
    const raw = Buffer.concat([
      Buffer.from(
        [
          "MIME-Version: 1.0",
          "Content-Type: multipart/mixed;",
          '\tboundary="b=1+(x)"',
          "",
          "This is the preamble, ignored.",
          "--b=1+(x)",
          "CONTENT-TYPE: Text/X-Bootlace; charset=iso-8859-1",
          "Content-Disposition: attachment; filename*=utf-8''caf%C3%A9.yaml",
          "",
          "dns:",
          "  owner_id: caf",
        ].join("\r\n"),
        "latin1",
      ),
      Buffer.from([0xe9]), // é in latin-1: not a valid owner_id, but it must arrive as é
      Buffer.from(["", "--b=1+(x)", "Content-Type: text/x-shellscript", "", "BOOTLACE_PROFILE=web", ""].join("\r\n")),
    ]);
    const u = parseUserData(raw);
    expect(summary(u)).toEqual({
      labels: ['user-data part 1 (text/x-bootlace, "café.yaml")'],
      values: [{ dns: { owner_id: "café" } }],
      sets: [],
      profile: ["web", "user-data part 2 (text/x-shellscript)", 1],
    });
  });

  test("a bootlace part whose bytes are not text in its charset is refused, naming the part; a script's are not read", () => {
    const part = (type: string, body: Buffer) => [
      Buffer.from(`--b\nContent-Type: ${type}\n\n`),
      body,
      Buffer.from("\n"),
    ];
    const raw = Buffer.concat([
      Buffer.from('Content-Type: multipart/mixed; boundary="b"\nMIME-Version: 1.0\n\n'),
      ...part("text/x-bootlace", Buffer.from([0x64, 0x6e, 0x73, 0x3a, 0x20, 0xff, 0xfe])),
      ...part("text/x-shellscript", Buffer.from([0x23, 0x21, 0x2f, 0x62, 0x69, 0x6e, 0x2f, 0x73, 0x68, 0x0a, 0xff])),
      Buffer.from("--b--\n"),
    ]);
    expect(errorsOf(raw)).toEqual(["user-data part 1 (text/x-bootlace): not valid utf-8 text"]);
  });

  test("a single-part MIME message of type text/x-bootlace", () => {
    const raw = Buffer.from("Content-Type: text/x-bootlace\nMIME-Version: 1.0\n\nwatch:\n  interval: 70\n");
    const u = parseUserData(raw);
    expect(summary(u).labels).toEqual(["user-data (text/x-bootlace)"]);
    expect(valueOf(u.documents[0])).toEqual({ watch: { interval: 70 } });
  });

  test("multipart without a boundary is an error", () => {
    expect(errorsOf(Buffer.from("Content-Type: multipart/mixed\nMIME-Version: 1.0\n\nbody\n"))).toEqual([
      "user-data: multipart/mixed without a boundary parameter",
    ]);
  });
});

describe("credentials in user-data", () => {
  const why = /readable by any process on the instance; .*instance profile/;

  test("an access key id in another part refuses the user-data, naming part and line, without the secret", () => {
    const messages = errorsOf(fixture("mime-credentials.txt"));
    expect(messages).toEqual([
      expect.stringMatching(/^user-data part 2 \(text\/x-shellscript, "creds.sh"\), line 2: .*access key id/),
      expect.stringMatching(/^user-data part 2 \(text\/x-shellscript, "creds.sh"\), line 3: .*AWS_SECRET_ACCESS_KEY/),
    ]);
    for (const m of messages) {
      expect(m).toMatch(why);
      expect(m).not.toContain("AKIAIOSFODNN7EXAMPLE");
      expect(m).not.toContain("wJalrXUtnFEMI");
    }
  });

  test.each([
    ["aws_secret_access_key in YAML", "#bootlace\nwatch: {interval: 60}\naws_secret_access_key: abc123\n", 3],
    ["aws_session_token in JSON", '#bootlace\n{"watch": {"interval": 60},\n "aws_session_token": "tok"}\n', 3],
    ["an access key id in a value", "#bootlace\ndns:\n  owner_id: ASIAABCDEFGHIJKLMNOP\n", 3],
  ])("%s", (_, text, line) => {
    expect(errorsOf(Buffer.from(text))).toEqual([
      expect.stringMatching(new RegExp(`^user-data \\(#bootlace\\), line ${line}: refusing user-data`)),
    ]);
  });

  test("credentials with no bootlace configuration are not bootlace's business", () => {
    expect(parseUserData(Buffer.from("#!/bin/sh\nexport AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"))).toEqual({
      files: [],
      documents: [],
      sets: [],
    });
  });

  test("a variable named like a secret but empty is not a credential", () => {
    expect(() => parseUserData(Buffer.from("#!/bin/sh\nBOOTLACE_PROFILE=web\nAWS_SESSION_TOKEN=\n"))).not.toThrow();
  });
});
