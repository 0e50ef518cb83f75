// What may land in a file, value by value: the token alphabet for free text, what an escaper still refuses, each
// kind's check, and the names of /etc/hosts.
import type { Use } from "../../agent/template/engine";
import { renderValues } from "../../agent/template/engine";
import type { PeerView } from "../../agent/template/render";
import { templateView } from "../../agent/template/render";
import {
  describeUse,
  escapedTextProblem,
  freeTextProblem,
  hostsProblems,
  isHostsFile,
  isReservedHostName,
  literalReplacement,
  useProblem,
} from "../../agent/files/values";
import { shellQuote } from "../../agent/template/command";
import { hostedInstance as instance } from "../support/hosted-instance";

describe("freeTextProblem: the token alphabet", () => {
  it.each(["db-1", "prod_eu.west", "a=b", "10.0.0.5", "x:y/z@w+v", "café", "日本", "*?[]!~%^"])(
    "lets %j through",
    (value) => expect(freeTextProblem(value)).toBeUndefined(),
  );

  it.each([
    ["a b", "has whitespace (U+0020)"],
    ["a\tb", "has the control character U+0009"],
    ["x\ny", "has a line break (U+000A)"],
    ["x\ry", "has a line break (U+000D)"],
    ["x\u0085y", "has a line break (U+0085)"],
    ["x\u2028y", "has a line break (U+2028)"],
    ["x\u2029y", "has a line break (U+2029)"],
    ["x\u00a0y", "has whitespace (U+00A0)"],
    ["x\u3000y", "has whitespace (U+3000)"],
    ["nul\u0000", "has the control character U+0000"],
    ["del\u007f", "has the control character U+007F"],
    ["zero\u200bwidth", "has the invisible format character U+200B"],
    ["bidi\u202e", "has the invisible format character U+202E"],
    ["bom\ufeff", "has the invisible format character U+FEFF"],
    ["lone\ud800", "is not valid UTF-16 (a lone surrogate U+D800)"],
    ["lone\udc00x", "is not valid UTF-16 (a lone surrogate U+DC00)"],
    ["private\ue000", "has the private-use or unassigned character U+E000"],
    ["it's", `has a "'"`],
    ['say "x"', "has whitespace (U+0020)"],
    ['"x"', `has a '"'`],
    ["`id`", "has a '`'"],
    ["a\\b", "has a '\\'"],
    ["$(touch)", "has a '$'"],
    ["x#y", "has a '#'"],
    ["a;b", "has a ';'"],
    ["a<b", "has a '<'"],
    ["a>b", "has a '>'"],
    ["a|b", "has a '|'"],
    ["a&b", "has a '&'"],
    ["f(x)", "has a '('"],
    ["x)", "has a ')'"],
    ["{x", "has a '{'"],
    ["x}", "has a '}'"],
    // pg_hba.conf: an empty field drops a column, a comma makes a list, a leading @ reads a file, a leading + a group
    ["", "is empty"],
    ["a,b", "has a ','"],
    ["@/etc/passwd", "starts with a '@'"],
    ["+admins", "starts with a '+'"],
  ])("%j → %s", (value, reason) => {
    expect(freeTextProblem(value)).toBe(reason);
  });

  it("takes a well-formed astral character (a surrogate pair) as one character", () => {
    expect(freeTextProblem("rocket-\u{1f680}")).toBeUndefined();
  });
});

describe("escapedTextProblem: inside an escaper", () => {
  it.each(["x'); system('touch pwned'); //", 'a "b" $c `d` \\e #f', "café au lait\u00a0!"])(
    "lets %j through",
    (value) => expect(escapedTextProblem(value)).toBeUndefined(),
  );

  it.each([
    ["a\nb", "has a line break (U+000A)"],
    ["a\u2028b", "has a line break (U+2028)"],
    ["a\u0085b", "has a line break (U+0085)"],
    ["nul\u0000", "has the control character U+0000"],
    ["tab\t", "has the control character U+0009"],
    ["lone\udfff", "is not valid UTF-16 (a lone surrogate U+DFFF)"],
  ])("%j → %s", (value, reason) => expect(escapedTextProblem(value)).toBe(reason));
});

const use = (over: Partial<Use>): Use => ({
  name: "x",
  value: "",
  kind: "text",
  origin: { of: "instance" },
  ...over,
});

describe("useProblem: each kind checked for what it claims to be", () => {
  it.each([
    ["address", "10.0.0.5", undefined],
    ["address", "fd00::5", undefined],
    ["address", "", undefined],
    ["address", "10.0.0.5\n", "is not an IP address"],
    ["address", "10.0.0.256", "is not an IP address"],
    ["dns", "ip-10-0-0-5.ec2.internal", undefined],
    ["dns", "db 1", "is not a DNS name"],
    ["id", "i-0123456789abcdef0", undefined],
    ["id", "0e:12:34:56:78:9a", undefined],
    ["id", "us-east-1a", undefined],
    ["id", "i-1; x", "is not an identifier"],
    ["text", "a b", "has whitespace (U+0020)"],
  ] as const)("%s %j → %s", (kind, value, problem) => {
    expect(useProblem(use({ kind, value }))).toBe(problem);
  });

  it("in pg_hba.conf, refuses free text that is one of its keywords, whatever the case", () => {
    for (const word of ["all", "sameuser", "samerole", "samegroup", "replication", "samehost", "samenet", "ALL"]) {
      expect(useProblem(use({ value: word }), { pgHba: true })).toBe("is a pg_hba.conf keyword");
      expect(useProblem(use({ value: word }))).toBeUndefined();
    }
    expect(useProblem(use({ value: "app" }), { pgHba: true })).toBeUndefined();
  });

  it("holds free text inside an escaper to the escaper's rule only", () => {
    expect(useProblem(use({ value: "it's", escaper: "php" }))).toBeUndefined();
    expect(useProblem(use({ value: "a\nb", escaper: "php" }))).toBe("has a line break (U+000A)");
    // An address is an address in any section.
    expect(useProblem(use({ kind: "address", value: "x y", escaper: "shell" }))).toBe("is not an IP address");
  });

  it("names the value as a message should: the tag, the peer's Name tag, the instance's field", () => {
    const peer: PeerView = { id: "i-1", ip: "10.0.0.1", name: "db 1", az: "a", tags: { Name: "db 1" } };
    const origin = { of: "peer" as const, set: "db", peer };
    expect(describeUse(use({ tag: "Env", value: "a\nb" }))).toBe('tag Env "a\\nb"');
    // JSON.stringify leaves these raw; a message (and the report) must not.
    expect(describeUse(use({ tag: "Env", value: "a\u2028b\u0085c" }))).toBe('tag Env "a\\u2028b\\u0085c"');
    expect(describeUse(use({ origin, field: "name", value: "db 1", kind: "dns" }))).toBe('tag Name "db 1"');
    expect(describeUse(use({ origin, field: "ip", value: "x", kind: "address" }))).toBe('address "x"');
    expect(describeUse(use({ name: "instance.hostname", field: "hostname", value: "h" }))).toBe(
      'instance.hostname "h"',
    );
  });
});

describe("/etc/hosts", () => {
  it("knows which files are hosts files", () => {
    expect(isHostsFile("/etc/hosts")).toBe(true);
    expect(isHostsFile("/etc/cloud/templates/hosts.debian.tmpl")).toBe(true);
    expect(isHostsFile("/etc/hosts.allow")).toBe(false);
  });

  it.each([
    "localhost",
    "LOCALHOST.",
    "localhost.localdomain",
    "localhost6",
    "localhost6.localdomain6",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-allnodes",
    "broadcasthost",
    "db.localhost",
    "ip-10-0-0-5",
    "ip-10-0-0-5.ec2.internal",
  ])("%s is reserved", (name) => {
    expect(isReservedHostName(name, "ip-10-0-0-5.ec2.internal")).toBe(true);
  });

  it.each(["db-1", "localhostess", "mylocalhost", "ip-10-0-0-6", "localhost.example.com"])("%s is not", (name) => {
    expect(isReservedHostName(name, "ip-10-0-0-5.ec2.internal")).toBe(false);
  });

  const peer = (name: string, ip = "10.0.0.9"): PeerView => ({
    id: "i-0bbbbbbbbbbbbbbb1",
    ip,
    name,
    az: "us-east-1a",
    tags: { Name: name },
  });
  const problemsOf = (template: string, peers: PeerView[], mode: "lines" | "fragment" = "lines") => {
    const view = templateView(instance, { Alias: "localhost", Good: "web", Self: "ip-10-0-0-5" }, { db: peers });
    const rendered = renderValues(template, view, { check: () => undefined });
    return hostsProblems(rendered, instance.hostname, mode).map((p) => ({
      field: p.field,
      problem: p.problem,
      culprits: p.culprits.map((u) => (u.origin.of === "peer" ? `peer ${u.name}` : `own ${u.name}`)),
    }));
  };
  const each = "{{#peers.db}}{{ip}} {{name}} {{name}}.db.internal # {{name}}\n{{/peers.db}}";

  it("checks every name made of a peer's value, and blames the peer", () => {
    expect(problemsOf(each, [peer("db-1")])).toEqual([]);
    expect(problemsOf(each, [peer("localhost")])).toEqual([
      { field: "localhost", problem: "is a reserved name", culprits: ["peer name"] },
    ]);
    expect(problemsOf(each, [peer("ip-10-0-0-5")])).toEqual([
      { field: "ip-10-0-0-5", problem: "is a reserved name", culprits: ["peer name"] },
    ]);
    expect(problemsOf(each, [peer("x.localhost")])).toEqual([
      { field: "x.localhost", problem: "is a reserved name", culprits: ["peer name"] },
    ]);
    // A name with a line break is the kind check's to refuse (useProblem): here its lines look well-formed.
    expect(problemsOf(each, [peer("*.db")])).toEqual([
      { field: "*.db", problem: "is not a DNS name", culprits: ["peer name"] },
      { field: "*.db.db.internal", problem: "is not a DNS name", culprits: ["peer name"] },
    ]);
  });

  it("leaves the template's own text alone, and lets the instance name itself", () => {
    const template = "127.0.0.1 localhost\n{{instance.private_ipv4}} {{instance.hostname}} {{tags.Good}}\n";
    expect(problemsOf(template, [])).toEqual([]);
    expect(problemsOf("{{instance.private_ipv4}} {{tags.Alias}}\n", [])).toEqual([
      { field: "localhost", problem: "is a reserved name", culprits: ["own tags.Alias"] },
    ]);
  });

  it("never lets a tag, even the instance's own, map the instance's hostname", () => {
    expect(problemsOf("10.9.9.9 {{tags.Self}}\n", [])).toEqual([
      { field: "ip-10-0-0-5", problem: "is a reserved name", culprits: ["own tags.Self"] },
    ]);
    expect(problemsOf("10.9.9.9 {{tags.Self}}.ec2.internal\n", [])).toEqual([
      { field: "ip-10-0-0-5.ec2.internal", problem: "is a reserved name", culprits: ["own tags.Self"] },
    ]);
  });

  it("wants an address first on a line with values; the template is blamed when its text is at fault", () => {
    expect(problemsOf("{{#peers.db}}db.internal {{ip}}\n{{/peers.db}}", [peer("db-1")])).toEqual([
      { field: "db.internal", problem: "is not an address", culprits: [] },
      { field: "10.0.0.9", problem: "is not a DNS name", culprits: ["peer ip"] },
    ]);
  });

  it("in a replace's `with`, takes a field of addresses as an address and any other as a name", () => {
    expect(problemsOf("{{peers.db.0.ip}} {{peers.db.0.name}}", [peer("db-1")], "fragment")).toEqual([]);
    expect(problemsOf("{{peers.db.0.name}}", [peer("localhost6")], "fragment")).toEqual([
      { field: "localhost6", problem: "is a reserved name", culprits: ["peer peers.db.0.name"] },
    ]);
  });
});

describe("escapes", () => {
  it("shellQuote makes one shell word of anything", () => {
    expect(shellQuote("/etc/.x.bootlace-abc")).toBe("'/etc/.x.bootlace-abc'");
    expect(shellQuote("a'b; rm -rf /")).toBe(`'a'\\''b; rm -rf /'`);
  });

  it("literalReplacement keeps $ literal in String.replace", () => {
    expect("x".replace("x", literalReplacement("$& and $1"))).toBe("$& and $1");
  });
});
