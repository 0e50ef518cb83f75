// Bundles the agent into the single file dist/bootlace.js, and the developer tools (demo, emulators, docs generator)
// beside it. The agent bundle needs nothing installed next to it: every dependency is inside.
import { build } from "esbuild";
import { chmodSync, mkdirSync, statSync } from "node:fs";

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

await build({
  ...common,
  entryPoints: ["agent/main.ts"],
  outfile: "dist/bootlace.js",
  minify: true,
  // The AWS SDK's XML serializer relies on function names: renaming them makes Route 53 refuse every change batch.
  keepNames: true,
  banner: { js: "#!/usr/bin/env node" },
  metafile: false,
  plugins: [withoutDefaultCredentialChain],
});
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
