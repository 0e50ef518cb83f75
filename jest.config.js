// Unit tests run the TypeScript in-process; integration tests run the built dist/bootlace.js against moto.
/** @type {import('jest').Config} */
// Type-checking is tsc's job (npm run typecheck); here tests compile to CommonJS so the agent's lazy import()s of the
// AWS SDK become require()s that jest's module system can follow.
const transform = {
  "^.+\\.ts$": ["ts-jest", { diagnostics: false, tsconfig: { module: "commonjs", moduleResolution: "node10" } }],
};

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
