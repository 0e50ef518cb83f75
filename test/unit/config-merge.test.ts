// The merge rules on their own: maps merge key by key, lists and scalars replace whole, null removes; provenance follows.
import { locate, merge, PathError, setPath, toPlain } from "../../agent/config/merge";
import type { Tracked } from "../../agent/config/merge";
import { parseYamlSource } from "../../agent/config/sources";

function tree(label: string, yaml: string): Tracked {
  const parsed = parseYamlSource(label, yaml);
  if (!parsed.document) throw new Error(parsed.errors.map((e) => e.message).join("\n"));
  return parsed.document.tree;
}

const A = tree("a", "dns:\n  wait: none\n  records:\n    - zone: a\n    - zone: b\nwatch:\n  interval: 10\n");
const B = tree("b", "dns:\n  owner_id: me\n  records:\n    - zone: c\nwatch: null\n");

test("maps merge key by key, lists replace whole, null removes the key", () => {
  expect(toPlain(merge(A, B))).toEqual({ dns: { wait: "none", owner_id: "me", records: [{ zone: "c" }] } });
});

test("each value keeps the source and line it came from", () => {
  const merged = merge(A, B);
  expect(locate(merged, ["dns", "wait"])).toEqual({ source: "a", line: 2 });
  expect(locate(merged, ["dns", "owner_id"])).toEqual({ source: "b", line: 2 });
  expect(locate(merged, ["dns", "records", 0, "zone"])).toEqual({ source: "b", line: 4 });
  // A missing key is located at its deepest existing parent.
  expect(locate(merged, ["dns", "records", 0, "name"])).toEqual({ source: "b", line: 4 });
  expect(locate(merged, ["dns", "records", 3])).toEqual({ source: "b", line: 3 });
});

test("a null inside a map of a first source does not survive as a value", () => {
  expect(toPlain(merge(tree("x", "{}"), tree("y", "dns:\n  wait: null\n  owner_id: x\n")))).toEqual({
    dns: { owner_id: "x" },
  });
});

describe("setPath", () => {
  const value = (v: unknown): Tracked => ({ kind: "scalar", where: { source: "--set" }, value: v });

  test("edits a list item in place and creates missing maps", () => {
    const set = setPath(setPath(A, ["dns", "records", "1", "ttl"], value(30)), ["peers", "db", "min"], value(2));
    expect(toPlain(set)).toMatchObject({
      dns: { records: [{ zone: "a" }, { zone: "b", ttl: 30 }] },
      peers: { db: { min: 2 } },
    });
    expect(locate(set, ["dns", "records", 1, "ttl"])).toEqual({ source: "--set" });
    expect(locate(set, ["dns", "records", 1, "zone"])).toEqual({ source: "a", line: 5 });
  });

  test("one past the end appends; a missing list is created for an index", () => {
    expect(toPlain(setPath(A, ["dns", "records", "2", "zone"], value("c")))).toMatchObject({
      dns: { records: [{ zone: "a" }, { zone: "b" }, { zone: "c" }] },
    });
    expect(toPlain(setPath(A, ["files", "0", "path"], value("/x")))).toMatchObject({ files: [{ path: "/x" }] });
  });

  test("a null value removes the key", () => {
    const dns = (toPlain(setPath(A, ["dns", "wait"], value(null))) as { dns: object }).dns;
    expect(Object.keys(dns)).toEqual(["records"]);
  });

  test.each([
    [["dns", "records", "9", "zone"], /past the end/],
    [["dns", "records", "first"], /not an index/],
    [["dns", "wait", "x"], /inside a string/],
    [["dns", "", "x"], /empty key/],
  ])("impossible path %j", (path, message) => {
    expect(() => setPath(A, path, value(1))).toThrow(PathError);
    expect(() => setPath(A, path, value(1))).toThrow(message);
  });

  test("leaves the original tree alone", () => {
    setPath(A, ["dns", "wait"], value("insync"));
    expect(toPlain(A)).toMatchObject({ dns: { wait: "none" } });
  });
});
