// Bundles the agent into the single file dist/bootlace.js, and the developer tools (demo, emulators, docs generator)
// beside it. The agent bundle needs nothing installed next to it: every dependency is inside.
//
// dist/bootlace.js is a small launcher (agent/launcher/main.ts) followed by the agent inside a comment, which the
// launcher compiles with a V8 code cache (docs/development.md, "Start-up"). dist/bootlace-sea.js is the agent alone,
// for the single executable, which has a code cache of its own (scripts/build-sea.sh).
import { build } from "esbuild";
import { chmodSync, mkdirSync, statSync, writeFileSync } from "node:fs";

const common = {
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  logLevel: "warning",
  legalComments: "none",
};

/**
 * Every AWS client's runtime config imports the SDK's default credential chain, but bootlace hands each client its own
 * credentials (agent/instance/credentials.ts), so the chain is never called: leave it out, with the STS and SSO clients
 * it pulls in (about 120 KiB) and its IMDS provider, which falls back to IMDSv1.
 */
const withoutDefaultCredentialChain = {
  name: "without-default-credential-chain",
  setup(b) {
    b.onResolve({ filter: /^@aws-sdk\/credential-provider-node$/ }, (args) => ({ path: args.path, namespace: "stub" }));
    b.onLoad({ filter: /.*/, namespace: "stub" }, () => ({
      loader: "js",
      contents:
        "exports.defaultProvider = () => () => Promise.reject(new Error(" +
        "'bootlace gives every AWS client its credentials; the default chain is not in the bundle'));",
    }));
  },
};

mkdirSync("dist", { recursive: true });

const agent = await build({
  ...common,
  entryPoints: ["agent/main.ts"],
  outfile: "dist/bootlace-sea.js",
  minify: true,
  // The AWS SDK's XML serializer relies on function names: renaming them makes Route 53 refuse every change batch.
  keepNames: true,
  // The launcher compiles the agent with vm.Script, where import() needs a loader callback Node 18 and 20 only have
  // behind a flag: esbuild turns the few import()s of Node's own modules into require()s.
  supported: { "dynamic-import": false },
  // ASCII only (esbuild's default, said here because the launcher relies on it): one byte per character, and no
  // \x01, which escapes the end of the comment the agent sits in.
  charset: "ascii",
  write: false,
  plugins: [withoutDefaultCredentialChain],
});
const core = agent.outputFiles[0].text;
if (core.includes("\x01")) throw new Error("build: the agent's code contains \\x01, the launcher's escape byte");
writeFileSync("dist/bootlace-sea.js", core);

const launcher = await build({
  ...common,
  entryPoints: ["agent/launcher/main.ts"],
  outfile: "dist/launcher.js",
  minify: true,
  write: false,
});
writeFileSync(
  "dist/bootlace.js",
  "#!/usr/bin/env node\n" +
    launcher.outputFiles[0].text +
    "/*bootlace-core\n" +
    core.replaceAll("*/", "*\x01/") +
    "*/\n",
);
chmodSync("dist/bootlace.js", 0o755);

await build({
  ...common,
  entryPoints: {
    demo: "scripts/demo.ts",
    bench: "scripts/bench.ts",
    "bench-fleet": "scripts/bench-fleet.ts",
    emulators: "scripts/emulators.ts",
    "gen-docs": "scripts/gen-docs.ts",
  },
  outdir: "dist",
  sourcemap: "inline",
});

const kib = (statSync("dist/bootlace.js").size / 1024).toFixed(0);
console.log(`built dist/bootlace.js (${kib} KiB)`);
