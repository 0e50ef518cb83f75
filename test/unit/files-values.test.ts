// What may land in a file: which peers are safe, given what its templates use, and the escapes.
import {
  literalReplacement,
  ownTagProblems,
  peerProblems,
  safePeers,
  shellQuote,
  unsafeReason,
} from "../../agent/files/values";
import { fieldUse } from "../../agent/template/analysis";
import type { PeerView } from "../../agent/template/render";

const peer = (over: Partial<PeerView> = {}): PeerView => ({
  id: "i-0aaaaaaaaaaaaaaa1",
  ip: "10.0.0.5",
  name: "db-1",
  az: "us-east-1a",
  tags: { Name: "db-1", Role: "db" },
  ...over,
});

describe("unsafeReason", () => {
  it.each([
    ["db-1", undefined],
    ["a b c", undefined],
    ["x\ny", "has a line break"],
    ["x # y", "has a '#'"],
    ["tab\there", "has the control character U+0009"],
    ["nul\u0000", "has the control character U+0000"],
    ["del\u007f", "has the control character U+007F"],
  ])("%j → %s", (value, reason) => {
    expect(unsafeReason(value)).toBe(reason);
  });
});

describe("peerProblems", () => {
  const use = fieldUse(["{{#peers.db}}{{ip}} {{name}} {{tags.Role}}{{/peers.db}}"]);

  it("accepts a well-formed peer", () => {
    expect(peerProblems(peer(), use)).toEqual([]);
  });

  it("names the tag that is unsafe", () => {
    const hostile = peer({ name: "db\n10.6.6.6 bank", tags: { Name: "db\n10.6.6.6 bank", Role: "db # x" } });
    expect(peerProblems(hostile, use)).toEqual([
      'tag Name "db\\n10.6.6.6 bank" is not a DNS name',
      `tag Role "db # x" has a '#'`,
    ]);
  });

  it("checks only the values the file uses", () => {
    const odd = peer({ name: "web server", tags: { Name: "web server", Note: "a\nb" } });
    expect(peerProblems(odd, fieldUse(["{{#peers.db}}{{ip}}{{/peers.db}}"]))).toEqual([]);
    expect(peerProblems(odd, fieldUse(["{{#peers.db}}{{#tags}}{{/tags}}{{/peers.db}}"]))).toEqual([
      'tag Note "a\\nb" has a line break',
    ]);
  });

  it("checks the address is an address", () => {
    expect(peerProblems(peer({ ip: "10.0.0.5\n" }), use)[0]).toMatch(/address .* is not IPv4/);
  });
});

describe("safePeers", () => {
  it("leaves unsafe peers out of their set and says who and why", () => {
    const bad = peer({ id: "i-0bbbbbbbbbbbbbbb2", ip: "10.0.0.6", name: "x#y", tags: { Name: "x#y" } });
    const result = safePeers({ db: [peer(), bad], app: [] }, fieldUse(["{{#peers.db}}{{name}}{{/peers.db}}"]));
    expect(result.sets).toEqual({ db: [peer()], app: [] });
    expect(result.excluded).toEqual([{ set: "db", peer: bad, problems: ['tag Name "x#y" is not a DNS name'] }]);
  });
});

describe("ownTagProblems", () => {
  it("checks the instance's own tags the file uses", () => {
    expect(ownTagProblems({ Env: "prod\n", Other: "#" }, fieldUse(["{{tags.Env}}"]))).toEqual([
      'tag Env "prod\\n" has a line break',
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
