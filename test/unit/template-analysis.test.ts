// What a template uses, read without rendering it: variable names, and the peer sets, fields and tags they reach.
import {
  contentTemplates,
  fieldUse,
  inlineTemplates,
  templateNames,
  templateProblems,
} from "../../agent/template/analysis";

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

describe("templateProblems: every variable known before anything renders", () => {
  const files = { peerSets: ["db", "app"], escapers: true };
  const names = { escapers: false };

  it("accepts what the view has, in sections too", () => {
    const ok = [
      "{{instance.id}} {{instance.hostname}} {{tags.Env}} {{{tags.X}}} {{& instance.mac}}",
      "{{#peers.db}}{{ip}} {{name}} {{az}} {{id}} {{tags.Role}} {{instance.id}}{{/peers.db}}",
      "{{peers.db.0.ip}} {{#peers.app.1}}{{name}}{{/peers.app.1}} {{^peers.db}}none{{/peers.db}}",
      "{{#peers}}{{#db}}{{ip}}{{/db}}{{/peers}} {{#instance}}{{id}}{{/instance}}",
      "{{#tags.Zone}}zone {{tags.Zone}}{{/tags.Zone}} {{! a comment }}",
      "{{#escape.php}}define('X', '{{tags.X}}');{{/escape.php}} {{#escape.shell}}{{tags.Y}}{{/escape.shell}}",
      "{{=<% %>=}}<% instance.id %>",
    ];
    for (const t of ok) expect(templateProblems(t, files)).toEqual([]);
  });

  it.each([
    ["{{instance.nope}}", "unknown variable {{instance.nope}}: instance has no nope (it has id, region, az, "],
    ["{{peers.db.0.ipp}}", "unknown variable {{peers.db.0.ipp}}: a peer has no ipp (it has id, ip, name, az, tags)"],
    ["{{peers.nosuchset}}", "unknown variable {{peers.nosuchset}}: peers.nosuchset is not configured (peers: db, app)"],
    ["{{#peers.redis}}{{ip}}{{/peers.redis}}", "unknown variable {{peers.redis}}: peers.redis is not configured"],
    ["{{nope}}", "unknown variable {{nope}}: no variable nope (variables: instance, tags, peers)"],
    ["{{#peers.db}}{{ipp}}{{/peers.db}}", "unknown variable {{ipp}}: no variable ipp"],
    ["{{#tags.X}}{{instance.nope}}{{/tags.X}}", "unknown variable {{instance.nope}}"],
    ["{{peers.db.first.ip}}", "unknown variable {{peers.db.first.ip}}: peers.db is a list: peers.db.0"],
    ["{{instance.id.x}}", "unknown variable {{instance.id.x}}: instance.id is a value, with no .x"],
    ["{{peers.db}}", "{{peers.db}} is a list: use a section"],
    ["{{instance}}", "{{instance}} is not a value"],
    ["{{#tags}}{{Env}}{{/tags}}", "{{#tags}}: a section over every tag is not supported"],
    ["{{#peers.db}}{{.}}{{/peers.db}}", "{{.}}: name the variable instead"],
    ["{{> partial}}", "{{> partial}}: partials are not supported"],
    [
      "{{#escape.sql}}{{tags.X}}{{/escape.sql}}",
      "{{#escape.sql}}: unknown escaper escape.sql (escapers: escape.php, escape.shell)",
    ],
    ["{{escape.php}}", "{{escape.php}}: escape.php is an escaper, used as a section"],
    ["{{^escape.php}}x{{/escape.php}}", "{{^escape.php}}: an escaper is not a condition"],
    ["{{#escape.php}}{{#escape.shell}}x{{/escape.shell}}{{/escape.php}}", "{{#escape.shell}}: escapers do not nest"],
    ["{{#escape.php}}{{instance.nope}}{{/escape.php}}", "unknown variable {{instance.nope}}"],
  ])("%s", (template, problem) => {
    const problems = templateProblems(template, files);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain(problem);
  });

  it("where names and filters are rendered, there are no peers and no escapers", () => {
    expect(templateProblems("{{instance.id}}.{{tags.Env}}", names)).toEqual([]);
    expect(templateProblems("{{peers.db.0.ip}}", names)).toEqual([
      "unknown variable {{peers.db.0.ip}}: peers are not available here",
    ]);
    expect(templateProblems("{{#escape.php}}x{{/escape.php}}", names)).toEqual([
      "{{#escape.php}}: escapers apply in files only",
    ]);
  });
});
