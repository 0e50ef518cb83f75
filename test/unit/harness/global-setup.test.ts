// The integration globalSetup stops the run at once, with the fix in the message, when a prerequisite is missing.
import { existsSync } from "node:fs";
import globalSetup from "../../harness/global-setup";
import { motoAvailable } from "../../harness/moto";

jest.mock("node:fs", () => ({ ...jest.requireActual<object>("node:fs"), existsSync: jest.fn() }));
jest.mock("../../harness/moto", () => ({
  ...jest.requireActual<object>("../../harness/moto"),
  motoAvailable: jest.fn(),
}));
const bundleExists = jest.mocked(existsSync);
const motoOnPath = jest.mocked(motoAvailable);

it("asks for a build when dist/bootlace.js is missing", () => {
  bundleExists.mockReturnValue(false);
  motoOnPath.mockReturnValue(true);
  expect(() => globalSetup()).toThrow(/dist\/bootlace\.js is missing: .*run `npm run build` first/);
});

it("says how to install moto when moto_server is not on PATH", () => {
  bundleExists.mockReturnValue(true);
  motoOnPath.mockReturnValue(false);
  expect(() => globalSetup()).toThrow("moto_server not found: pip install 'moto[server]'");
});

it("passes when both are there", () => {
  bundleExists.mockReturnValue(true);
  motoOnPath.mockReturnValue(true);
  expect(() => globalSetup()).not.toThrow();
});
