// The boot test (npm run test:boot): its own jest configuration, so that `npm test` (unit + integration) stays fast.
const { projects } = require("../../jest.config.js");

/** @type {import('jest').Config} */
module.exports = {
  rootDir: "../..",
  reporters: ["default", "<rootDir>/test/summary-reporter.js"],
  testMatch: ["<rootDir>/test/boot/**/*.test.ts"],
  transform: projects[0].transform,
  testEnvironment: "node",
  globalSetup: "<rootDir>/test/harness/global-setup.ts",
};
