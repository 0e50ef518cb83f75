// What a template uses, read without rendering it: variable names, and the peer sets, fields and tags they reach.
import { contentTemplates, fieldUse, inlineTemplates, templateNames } from "../../agent/template/analysis";

describe("templateNames and fieldUse", () => {
  it("finds the names of values, sections and inverted sections, nested", () => {
    expect(templateNames("{{#peers.db}}{{ip}} {{{name}}}{{^tags.X}}-{{/tags.X}}{{/peers.db}}{{&instance.id}}")).toEqual(
      ["peers.db", "ip", "name", "tags.X", "instance.id"],
    );
  });

  it("says which peer sets, peer fields and tags a file may contain", () => {
    const use = fieldUse(["{{#peers.db}}{{ip}} {{tags.Role}}{{/peers.db}}", "{{peers.app.0.name}}"]);
    expect([...use.peerSets]).toEqual(["db", "app"]);
    expect([...use.fields].sort()).toEqual(["ip", "name"]);
    expect([...use.tags]).toEqual(["Role"]);
    expect(use.allTags).toBe(false);
    expect(fieldUse(["{{#tags}}{{Env}}{{/tags}}"]).allTags).toBe(true);
    expect(fieldUse(["{{#peers}}{{#db}}x{{/db}}{{/peers}}"]).allPeerSets).toBe(true);
  });

  it("throws on a template that does not parse", () => {
    expect(() => fieldUse(["{{#a}}"])).toThrow();
  });
});

test("inlineTemplates: the templates written in a files entry, in block, replace, check, on_change order", () => {
  const entry = { block: "{{a}}", replace: [{ with: "{{b}}" }, { with: "{{c}}" }], check: "{{d}}" };
  expect(inlineTemplates(entry)).toEqual(["{{a}}", "{{b}}", "{{c}}", "{{d}}"]);
  // An argv command's elements are templates each.
  expect(inlineTemplates({ block: "{{a}}", check: ["php", "{{e}}"], on_change: ["x", "{{f}}"] })).toEqual([
    "{{a}}",
    "php",
    "{{e}}",
    "x",
    "{{f}}",
  ]);
  expect(inlineTemplates({})).toEqual([""]);
});

test("contentTemplates: only what lands in the file, not the commands", () => {
  expect(contentTemplates({ block: "{{a}}", replace: [{ with: "{{b}}" }] })).toEqual(["{{a}}", "{{b}}"]);
});
