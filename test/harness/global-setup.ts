// Jest globalSetup for the integration project: fail at once, with the fix, when a prerequisite is missing,
// instead of every test file timing out on its own.
import { existsSync } from "node:fs";
import { MOTO_MISSING, motoAvailable } from "./moto";
import { BUNDLE } from "./run-bundle";

export default function globalSetup(): void {
  if (!existsSync(BUNDLE)) {
    throw new Error(`${BUNDLE} is missing: the integration tests run the bundle, so run \`npm run build\` first`);
  }
  if (!motoAvailable()) throw new Error(MOTO_MISSING);
}
