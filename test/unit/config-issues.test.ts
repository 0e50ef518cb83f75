// zod's issues as bootlace reports them: at the value's source, line and key path, with the value and the keys allowed.
import { ConfigError } from "../../agent/core/errors";
import { inReadingOrder, issueErrors } from "../../agent/config/issues";
import { toPlain } from "../../agent/config/merge";
import { configSchema } from "../../agent/config/schema";
import { parseYamlSource } from "../../agent/config/sources";

function messages(yaml: string): string[] {
  const tree = parseYamlSource("f.yaml", yaml).document?.tree;
  if (!tree) throw new Error("the fixture does not parse");
  const parsed = configSchema.safeParse(toPlain(tree), { reportInput: true });
  return (parsed.error?.issues ?? []).flatMap((issue) => issueErrors(issue, tree)).map((e) => e.message);
}

test("an unknown key names the keys allowed there: in a profile, a list item, a named set", () => {
  expect(messages("profiles:\n  p:\n    watch:\n      every: 5\n")).toEqual([
    "f.yaml, line 4: profiles.p.watch.every: unknown key (expected one of: interval, notice_interval)",
  ]);
  expect(messages("dns:\n  records:\n    - zone: a.example\n      name: x\n      tll: 5\n")).toEqual([
    "f.yaml, line 5: dns.records.0.tll: unknown key (expected one of: zone, zone_id, private, name, type, value, ttl, delete_on_shutdown, takeover, set_identifier, multivalue, weight, failover, health_check_id, reverse)",
  ]);
  expect(messages("peers:\n  db:\n    tags: {Role: db}\n    max: 3\n")).toEqual([
    "f.yaml, line 4: peers.db.max: unknown key (expected one of: tags, min, timeout)",
  ]);
});

test("several unknown keys are one error each, at each key's line", () => {
  expect(messages("watch:\n  a: 1\n  b: 2\n")).toEqual([
    "f.yaml, line 2: watch.a: unknown key (expected one of: interval, notice_interval)",
    "f.yaml, line 3: watch.b: unknown key (expected one of: interval, notice_interval)",
  ]);
});

test("a value outside a choice, a wrong type and a missing key say what was given", () => {
  expect(messages("dns:\n  wait: sometimes\n")).toEqual([
    'f.yaml, line 2: dns.wait: expected "insync" or "none", got "sometimes"',
  ]);
  expect(messages("dns: [a]\n")).toEqual(["f.yaml, line 1: dns: expected object, got a list"]);
  expect(messages("dns:\n  records:\n    - zone: a.example\n")).toEqual([
    "f.yaml, line 3: dns.records.0.name: required (expected string)",
  ]);
});

test("the report: a mistake seen through a profile and the top level once, then by source and line", () => {
  const at = (source: string, line: number, keyPath: string) => new ConfigError("bad", { source, line }, keyPath);
  const errors = [
    at("b.yaml", 2, "watch.interval"),
    at("a.yaml", 9, "dns.wait"),
    at("a.yaml", 3, "profiles.web.dns.wait"),
    at("a.yaml", 3, "dns.wait"),
  ];
  expect(inReadingOrder(errors, ["a.yaml", "b.yaml"]).map((e) => e.message)).toEqual([
    "a.yaml, line 3: profiles.web.dns.wait: bad",
    "a.yaml, line 9: dns.wait: bad",
    "b.yaml, line 2: watch.interval: bad",
  ]);
});
