// docs/configuration.md is generated from the schema: it must match the code, and cover every key.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as z from "zod";
import { documentShape } from "../../agent/config/schema";
import { renderConfigReference } from "../../scripts/config-docs";

const DOC = join(__dirname, "../../docs/configuration.md");

test("docs/configuration.md is up to date with the schema", () => {
  const committed = readFileSync(DOC, "utf8");
  if (committed !== renderConfigReference()) {
    throw new Error("docs/configuration.md differs from the schema: run `npm run docs` and commit the result");
  }
});

/** Every key path of the schema, written as the reference writes them. */
function keyPaths(schema: Record<string, unknown>, prefix: string): string[] {
  const properties = (schema.properties ?? {}) as Record<string, Record<string, unknown>>;
  return Object.entries(properties).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    if (path === "profiles") return [path];
    const items = child.items as Record<string, unknown> | undefined;
    const values = child.additionalProperties as Record<string, unknown> | undefined;
    if (items?.properties) return [path, ...keyPaths(items, `${path}[]`)];
    if (typeof values === "object" && values.properties) return [path, ...keyPaths(values, `${path}.<name>`)];
    return [path, ...keyPaths(child, path)];
  });
}

test("the reference lists every key with its description", () => {
  const reference = renderConfigReference();
  const schema = z.toJSONSchema(documentShape, { io: "input" }) as Record<string, unknown>;
  const paths = keyPaths(schema, "");
  expect(paths).toContain("dns.records[].value");
  expect(paths).toContain("peers.<name>.tags");
  for (const path of paths) expect(reference).toContain(`| \`${path}\` |`);
  expect(reference).toMatch(/\| `dns\.records\[\]\.ttl` \| integer 0–2147483647 \| `60` \| TTL in seconds\. \|/);
  expect(reference).toMatch(/\| `dns\.records\[\]\.name` \| string \| required \|/);
});

test("the reference explains sources, merging, user-data forms and set paths", () => {
  const reference = renderConfigReference();
  for (const heading of [
    "## Where the configuration comes from",
    "## How sources merge",
    "## User-data",
    "## Paths in --set and BOOTLACE_SET_",
  ]) {
    expect(reference).toContain(heading);
  }
  expect(reference).toContain("BOOTLACE_SET_dns__records__0__ttl=30");
  expect(reference).toContain("Lists and scalars replace whole");
});
