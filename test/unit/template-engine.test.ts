// The files renderer: escapers, values checked with their kind and origin, strict peer tags, missing values, spans.
import type { Use } from "../../agent/template/engine";
import { escapePhp, renderValues, shellWord } from "../../agent/template/engine";
import type { PeerView } from "../../agent/template/render";
import { templateView } from "../../agent/template/render";
import { hostedInstance as instance } from "../support/hosted-instance";

const peer = (n: number, tags: Record<string, string> = {}): PeerView => ({
  id: `i-0bbbbbbbbbbbbbbb${n}`,
  ip: `10.0.1.${n}`,
  name: `db-${n}`,
  az: "us-east-1b",
  tags: { Name: `db-${n}`, ...tags },
});

function render(template: string, tags: Record<string, string>, peers: PeerView[] = []) {
  const uses: Use[] = [];
  const view = templateView(instance, tags, { db: peers });
  const result = renderValues(template, view, { check: (u) => uses.push(u) });
  return { ...result, uses };
}

describe("escapers", () => {
  const hostile = "x'); system('touch pwned'); //";

  it("escape.php escapes each value for a PHP single-quoted string, and leaves the template's own text alone", () => {
    const r = render("{{#escape.php}}define('DB_NAME', '{{tags.Db}}');{{/escape.php}} '{{tags.Env}}'", {
      Db: hostile,
      Env: "prod",
    });
    expect(r.text).toBe(`define('DB_NAME', 'x\\'); system(\\'touch pwned\\'); //'); 'prod'`);
    expect(escapePhp("a\\'b\\")).toBe("a\\\\\\'b\\\\");
    expect(r.uses.map((u) => [u.name, u.escaper])).toEqual([
      ["tags.Db", "php"],
      ["tags.Env", undefined],
    ]);
  });

  it("escape.shell makes the whole section one shell word, its text included", () => {
    const r = render("echo {{#escape.shell}}--name={{tags.Db}} it's{{/escape.shell}}", { Db: "$(touch pwned) `x`" });
    expect(r.text).toBe(`echo '--name=$(touch pwned) \`x\` it'\\''s'`);
    expect(shellWord("")).toBe("''");
    // One span: the word holds the value.
    expect(r.spans).toHaveLength(1);
    expect(r.text.slice(r.spans[0]!.start, r.spans[0]!.end)).toBe(r.text.slice(5));
  });

  it("escapes peers' values inside a peer section too", () => {
    const r = render("{{#peers.db}}{{#escape.php}}'{{tags.Db}}',{{/escape.php}}{{/peers.db}}", {}, [
      peer(1, { Db: "a'b" }),
      peer(2, { Db: "c\\" }),
    ]);
    expect(r.text).toBe("'a\\'b','c\\\\',");
    expect(r.uses.map((u) => (u.origin.of === "peer" ? u.origin.peer.id : "own"))).toEqual([peer(1).id, peer(2).id]);
  });

  it("escapes triple-mustache values the same way: escaping is off, escapers are not", () => {
    expect(render("{{#escape.php}}{{{tags.Db}}}{{& tags.Db}}{{/escape.php}}", { Db: "'" }).text).toBe("\\'\\'");
  });
});

describe("values: kind, origin, strict names", () => {
  it("hands every value to the check with its kind and where it came from", () => {
    const r = render(
      "{{instance.private_ipv4}} {{instance.hostname}} {{#peers.db}}{{ip}} {{name}} {{az}}{{/peers.db}}",
      {},
      [peer(1)],
    );
    expect(r.uses.map((u) => [u.name, u.kind, u.origin.of])).toEqual([
      ["instance.private_ipv4", "address", "instance"],
      ["instance.hostname", "dns", "instance"],
      ["ip", "address", "peer"],
      ["name", "dns", "peer"],
      ["az", "id", "peer"],
    ]);
  });

  it("a peer's {{tags.X}} is the peer's own tag, never this instance's, and a missing one is reported", () => {
    const r = render("{{#peers.db}}{{ip}} {{tags.Zone}};{{/peers.db}}", { Zone: "own-zone" }, [
      peer(1, { Zone: "blue" }),
      peer(2),
    ]);
    expect(r.text).toBe("10.0.1.1 blue;10.0.1.2 ;");
    expect(r.missing).toEqual([
      { name: "tags.Zone", origin: { of: "peer", set: "db", peer: peer(2) }, what: "tag Zone" },
    ]);
  });

  it("this instance's missing tag is reported; a section on a tag is a condition, not a use", () => {
    const r = render(
      "A={{tags.Team}} {{#tags.Zone}}zone={{tags.Zone}}{{/tags.Zone}}{{^tags.Zone}}no zone{{/tags.Zone}}",
      {},
    );
    expect(r.text).toBe("A= no zone");
    expect(r.missing).toEqual([{ name: "tags.Team", origin: { of: "instance" }, what: "tag Team" }]);
  });

  it("a peer by index that is not there is reported; the origin of a value by index is that peer", () => {
    const r = render("{{peers.db.0.ip}} {{peers.db.1.ip}}", {}, [peer(1)]);
    expect(r.text).toBe("10.0.1.1 ");
    expect(r.uses[0]!.origin).toEqual({ of: "peer", set: "db", peer: peer(1) });
    expect(r.missing).toEqual([
      { name: "peers.db.1.ip", origin: { of: "instance" }, what: "peers.db.1 (peers.db has 1)" },
    ]);
  });

  it("renders as Mustache does: standalone section lines leave no blank line", () => {
    const template = "a\n{{#peers.db}}\n{{ip}}\n{{/peers.db}}\nb\n";
    expect(render(template, {}, [peer(1), peer(2)]).text).toBe("a\n10.0.1.1\n10.0.1.2\nb\n");
  });

  it("throws on an unknown variable, which the static check refuses before any render", () => {
    expect(() => render("{{instance.nope}}", {})).toThrow("unknown variable {{instance.nope}}");
    expect(() => render("{{instance.constructor}}", {})).toThrow("unknown variable");
  });
});
