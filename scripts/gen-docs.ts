// Writes docs/configuration.md from the schema (`npm run docs`); a unit test fails when the committed file differs.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderConfigReference } from "./config-docs";

// Bundled to dist/gen-docs.js, so the repository root is one folder up from this file either way.
const target = join(__dirname, "..", "docs", "configuration.md");
writeFileSync(target, renderConfigReference());
console.log(`wrote ${target}`);
