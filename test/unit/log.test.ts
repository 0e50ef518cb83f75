// One log call is one line, whatever the values in it: line breaks of every kind become escapes, and a field value
// that is not a plain token is quoted.
import { createLogger, oneLine, quoted } from "../../agent/core/log";

/** Every way a reader may split lines: LF, CR, NEL, U+2028, U+2029, VT, FF. */
// eslint-disable-next-line no-control-regex -- the line breaks some readers split on
const lines = (text: string) => text.split(/\r\n|[\n\r\u0085\u2028\u2029\u000b\u000c]/u).filter((l) => l !== "");

function logged(format: "text" | "json", log: (l: ReturnType<typeof createLogger>) => void): string {
  let out = "";
  const logger = createLogger({ format, level: "debug", write: (l) => (out += l), now: () => 0 });
  log(logger);
  return out;
}

const hostile = [
  "db\n10.6.6.6 bank",
  "x\r\nbootlace: error: forged",
  "a\u0085b",
  "a\u2028b\u2029c",
  "tab\there\u000bvt\u000cff",
  "nul\u0000del\u007f",
  "bidi\u202eevil",
  "lone\ud800",
];

describe("createLogger", () => {
  it.each(hostile)("text: %j in the message and in fields stays on one line", (value) => {
    const out = logged("text", (l) => {
      l.warn(`left out peer i-1: its tag Name ${value}`, { tag: value, peer: { name: value } });
      l.info(value);
    });
    const split = lines(out);
    expect(split).toHaveLength(2);
    for (const line of split) expect(line).toMatch(/^bootlace: /);
  });

  it.each(hostile)("json: %j stays on one line and parses back to itself", (value) => {
    const out = logged("json", (l) => l.error(value, { tag: value }));
    expect(lines(out)).toHaveLength(1);
    const parsed = JSON.parse(out) as { msg: string; tag: string };
    expect(parsed.msg).toBe(value);
    expect(parsed.tag).toBe(value);
  });

  it("keeps plain tokens bare and quotes any other field value", () => {
    const out = logged("text", (l) => l.info("done", { id: "i-0abc", path: "/etc/hosts", name: "db 1", empty: "" }));
    expect(out).toBe('bootlace: done (id=i-0abc path=/etc/hosts name="db 1" empty="")\n');
  });

  it("keeps printable text of any language as it is", () => {
    expect(oneLine("café 日本 \u{1f680}")).toBe("café 日本 \u{1f680}");
    expect(oneLine("a\nb\u2028c\ud83d")).toBe("a\\nb\\u2028c\\ud83d");
  });

  it("quoted: bare when the value is a token, JSON otherwise", () => {
    expect(quoted("10.0.0.5")).toBe("10.0.0.5");
    expect(quoted("a=b,c+d@e:f/g")).toBe("a=b,c+d@e:f/g");
    expect(quoted("localhost\n")).toBe('"localhost\\n"');
    expect(quoted("")).toBe('""');
  });
});
