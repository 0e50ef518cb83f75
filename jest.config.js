// Unit tests run the TypeScript in-process; integration tests run the built dist/bootlace.js against moto.
/** @type {import('jest').Config} */
const transform = { "^.+\\.ts$": ["ts-jest", { diagnostics: false }] };

module.exports = {
  reporters: ["default", "<rootDir>/test/summary-reporter.js"],
  projects: [
    {
      displayName: "unit",
      testMatch: ["<rootDir>/test/unit/**/*.test.ts"],
      transform,
      testEnvironment: "node",
    },
    {
      displayName: "integration",
      testMatch: ["<rootDir>/test/integration/**/*.test.ts"],
      transform,
      testEnvironment: "node",
      globalSetup: "<rootDir>/test/harness/global-setup.ts",
    },
  ],
};
