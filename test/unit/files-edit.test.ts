// The pure editing of managed files: no filesystem, just text in and text out.
import type { BlockSpec } from "../../agent/files/edit";
import {
  applyBlock,
  applyReplace,
  beginMarker,
  endMarker,
  lineChanges,
  removeBlock,
  splitLines,
} from "../../agent/files/edit";

const spec = (body: string, over: Partial<BlockSpec> = {}): BlockSpec => ({
  name: "main",
  comment: "#",
  body,
  position: "bottom",
  ...over,
});
const B = beginMarker({ name: "main", comment: "#" });
const E = endMarker({ name: "main", comment: "#" });

const ok = (r: ReturnType<typeof applyBlock>): string => {
  if (!r.ok) throw new Error(`expected an edit, got: ${r.problem}`);
  return r.content;
};

describe("markers", () => {
  it("name bootlace and the block, after the file's comment sign", () => {
    expect(B).toBe("# BEGIN bootlace block main (managed by bootlace: edits inside are overwritten)");
    expect(endMarker({ name: "db-hosts", comment: "//" })).toBe("// END bootlace block db-hosts");
  });
});

describe("splitLines", () => {
  it("keeps every terminator, so joining gives back the text byte for byte", () => {
    const text = "a\r\nb\n\nc";
    expect(splitLines(text)).toEqual(["a\r\n", "b\n", "\n", "c"]);
    expect(splitLines(text).join("")).toBe(text);
    expect(splitLines("")).toEqual([]);
  });
});

describe("applyBlock", () => {
  const original = "127.0.0.1 localhost\n\n# a comment\n10.9.9.9 legacy\n";

  it("adds a new block at the bottom, keeping the rest byte for byte", () => {
    expect(ok(applyBlock(original, spec("10.0.0.5 db\n")))).toBe(`${original}${B}\n10.0.0.5 db\n${E}\n`);
  });

  it("adds a new block at the top", () => {
    expect(ok(applyBlock(original, spec("10.0.0.5 db\n", { position: "top" })))).toBe(
      `${B}\n10.0.0.5 db\n${E}\n${original}`,
    );
  });

  it("creates the content of a file that does not exist yet", () => {
    expect(ok(applyBlock("", spec("x\n")))).toBe(`${B}\nx\n${E}\n`);
  });

  it("replaces an existing block where it is, whatever position says", () => {
    const withBlock = `head\n${B}\nold 1\nold 2\n${E}\ntail\n`;
    expect(ok(applyBlock(withBlock, spec("new\n", { position: "top" })))).toBe(`head\n${B}\nnew\n${E}\ntail\n`);
  });

  it("is idempotent: applying the same block again changes nothing", () => {
    const once = ok(applyBlock(original, spec("a\nb\n")));
    expect(ok(applyBlock(once, spec("a\nb\n")))).toBe(once);
  });

  it("keeps an empty block (no peers yet) so it stays where it was put", () => {
    expect(ok(applyBlock(original, spec("")))).toBe(`${original}${B}\n${E}\n`);
  });

  it("adds the missing line break of an unterminated last line before a bottom block, and nothing else", () => {
    expect(ok(applyBlock("a\nb", spec("x")))).toBe(`a\nb\n${B}\nx\n${E}\n`);
  });

  it("uses the file's own CRLF line endings for the block", () => {
    expect(ok(applyBlock("a\r\nb\r\n", spec("x\ny\n")))).toBe(`a\r\nb\r\n${B}\r\nx\r\ny\r\n${E}\r\n`);
  });

  it("leaves other blocks (other names) alone", () => {
    const other = `${beginMarker({ name: "other", comment: "#" })}\nkeep\n${endMarker({ name: "other", comment: "#" })}\n`;
    expect(ok(applyBlock(other, spec("x\n")))).toBe(`${other}${B}\nx\n${E}\n`);
  });

  it("finds its markers with another comment sign", () => {
    const php = spec("$x = 1;\n", { comment: "//" });
    const once = ok(applyBlock("<?php\n", php));
    expect(once).toContain("// BEGIN bootlace block main");
    expect(ok(applyBlock(once, { ...php, body: "$x = 2;\n" }))).toBe(once.replace("$x = 1;", "$x = 2;"));
  });

  it.each([
    ["a BEGIN without END", `a\n${B}\nx\n`],
    ["an END without BEGIN", `a\n${E}\n`],
    ["two blocks of the same name", `${B}\n${E}\n${B}\n${E}\n`],
    ["END before BEGIN", `${E}\n${B}\n`],
  ])("refuses damaged markers (%s) rather than guess", (_, text) => {
    const r = applyBlock(text, spec("x\n"));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.problem).toMatch(/markers of bootlace block main are damaged.*fix them by hand/);
  });

  it("refuses a body that contains its own marker line", () => {
    const r = applyBlock("", spec(`x\n${E}\n`));
    expect(!r.ok && r.problem).toMatch(/contains its own marker line/);
  });
});

describe("removeBlock", () => {
  it("removes the block and only the block", () => {
    const original = "a\n\nb\n";
    const withBlock = ok(applyBlock(original, spec("x\ny\n")));
    expect(ok(removeBlock(withBlock, { name: "main", comment: "#" }))).toBe(original);
    const top = ok(applyBlock(original, spec("x\n", { position: "top" })));
    expect(ok(removeBlock(top, { name: "main", comment: "#" }))).toBe(original);
  });

  it("changes nothing when the block is not there", () => {
    expect(ok(removeBlock("a\nb", { name: "main", comment: "#" }))).toBe("a\nb");
  });

  it("refuses damaged markers", () => {
    expect(removeBlock(`${B}\nx\n`, { name: "main", comment: "#" }).ok).toBe(false);
  });
});

describe("applyReplace", () => {
  const php = "<?php\ndefine('DB_HOST', 'localhost');\r\ndefine('DB_NAME', 'app');\n// DB_HOST is set above";

  it("edits every matching line, keeps each line's terminator, and counts matches per edit", () => {
    const r = applyReplace(php, [
      { match: /define\('DB_HOST', '[^']*'\)/, with: "define('DB_HOST', '10.0.0.5')" },
      { match: /^\/\/ (\w+)/, with: "# $1" },
    ]);
    expect(r.content).toBe(
      "<?php\ndefine('DB_HOST', '10.0.0.5');\r\ndefine('DB_NAME', 'app');\n# DB_HOST is set above",
    );
    expect(r.matched).toEqual([1, 1]);
  });

  it("reports an edit that matches nothing (0), and still applies the others", () => {
    const r = applyReplace(php, [
      { match: /REDIS_HOST/, with: "x" },
      { match: /'app'/, with: "'shop'" },
    ]);
    expect(r.matched).toEqual([0, 1]);
    expect(r.content).toContain("'shop'");
  });

  it("replaces every occurrence within a line", () => {
    expect(applyReplace("a a a\n", [{ match: /a/, with: "b" }])).toEqual({ content: "b b b\n", matched: [1] });
  });

  it("is idempotent when the pattern matches its own output", () => {
    const edits = [{ match: /define\('DB_HOST', '[^']*'\)/, with: "define('DB_HOST', '10.0.0.5')" }];
    const once = applyReplace(php, edits).content;
    expect(applyReplace(once, edits).content).toBe(once);
  });

  it("matches lines without their terminator, so $ works on CRLF lines too", () => {
    expect(applyReplace("x = 1\r\n", [{ match: /1$/, with: "2" }]).content).toBe("x = 2\r\n");
  });
});

describe("lineChanges", () => {
  it("counts lines added and removed", () => {
    expect(lineChanges("a\nb\nc\n", "a\nc\nd\ne\n")).toEqual({ added: 2, removed: 1 });
    expect(lineChanges("", "a\n")).toEqual({ added: 1, removed: 0 });
    expect(lineChanges("a\na\n", "a\n")).toEqual({ added: 0, removed: 1 });
  });
});
