// Bundles the agent into the single file dist/bootlace.js, and the developer tools (demo, emulators, docs generator)
// beside it. The agent bundle needs nothing installed next to it: every dependency is inside.
//
// dist/bootlace.js is a small launcher (agent/launcher/main.ts) followed by the agent inside a comment, which the
// launcher compiles with a V8 code cache (docs/development.md, "Start-up"). dist/bootlace-sea.js is the agent alone,
// for the single executable, which has a code cache of its own (scripts/build-sea.sh).
import { build } from "esbuild";
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";

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

/**
 * The SDK's schema tables (dist-es/schemas/) name their traits with computed keys, `{ [_xN]: _it }`, where `_xN` is a
 * string constant of the same file; esbuild must assume a computed key may run code, so it keeps every schema of the
 * service (EC2: 600 KiB for ~700 operations). Written as the literal keys they are, the schemas bootlace's commands
 * do not reach are left out. The substitution only touches keys whose name the file defines as a string literal.
 */
const withLiteralSchemaKeys = {
  name: "with-literal-schema-keys",
  setup(b) {
    b.onLoad({ filter: /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]dist-es[\\/]schemas[\\/][^\\/]+\.js$/ }, async (args) => {
      const text = await readFile(args.path, "utf8");
      const constants = new Map();
      for (const m of text.matchAll(/^const (_[A-Za-z0-9]+) = ("[^"\\]*");$/gm)) constants.set(m[1], m[2]);
      const contents = text.replace(/\[(_[A-Za-z0-9]+)\]:/g, (whole, name) =>
        constants.has(name) ? `${constants.get(name)}:` : whole,
      );
      return { contents, loader: "js" };
    });
  },
};

mkdirSync("dist", { recursive: true });

/**
 * esbuild does not tree-shake a module it has to evaluate lazily, and every SDK client is loaded lazily (import() in
 * agent/aws/clients.ts, so that a run loads only the clients its actions call). So each agent/aws/sdk/<service>.ts is
 * first bundled alone, statically, keeping of its client package only what the commands it names reach; the other
 * packages (@smithy/*, @aws-sdk/core, ...), shared by every client, stay imports. The agent's build then takes these
 * instead of the client packages: EC2 goes from ~1 MiB to a few dozen KiB.
 */
const sdkDir = "dist/.sdk";
mkdirSync(sdkDir, { recursive: true });
const prebundled = new Map();
for (const name of readdirSync("agent/aws/sdk").filter((f) => f.endsWith(".ts"))) {
  const service = name.slice(0, -3);
  const outfile = `${sdkDir}/${service}.mjs`;
  await build({
    ...common,
    format: "esm",
    mainFields: ["module", "main"],
    entryPoints: [`agent/aws/sdk/${name}`],
    outfile,
    plugins: [
      withLiteralSchemaKeys,
      {
        name: "shared-packages-stay-imports",
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (args) =>
            /[\\/]@aws-sdk[\\/]client-[^\\/]+[\\/]/.test(args.importer) ? { external: true } : undefined,
          );
        },
      },
    ],
  });
  prebundled.set(service, resolvePath(outfile));
}
const withPrebundledSdk = {
  name: "with-prebundled-sdk",
  setup(b) {
    b.onResolve({ filter: /^\.\/sdk\/[a-z0-9]+$/ }, (args) => {
      const path = prebundled.get(args.path.slice("./sdk/".length));
      return path && /[\\/]agent[\\/]aws$/.test(args.resolveDir) ? { path } : undefined;
    });
  },
};

const agent = await build({
  ...common,
  entryPoints: ["agent/main.ts"],
  outfile: "dist/bootlace-sea.js",
  // BOOTLACE_NO_MINIFY=1: readable names in a CPU profile of the bundle.
  minify: process.env.BOOTLACE_NO_MINIFY !== "1",
  // The AWS SDK's XML serializer relies on function names: renaming them makes Route 53 refuse every change batch.
  keepNames: true,
  // The SDK's ES modules, not its CommonJS: esbuild can then leave out every command bootlace does not send
  // (agent/aws/sdk/ names the ones it does), about two thirds of the bundle.
  mainFields: ["module", "main"],
  // The launcher compiles the agent with vm.Script, where import() needs a loader callback Node 18 and 20 only have
  // behind a flag: esbuild turns the few import()s of Node's own modules into require()s.
  supported: { "dynamic-import": false },
  // ASCII only (esbuild's default, said here because the launcher relies on it): one byte per character, and no
  // \x01, which escapes the end of the comment the agent sits in.
  charset: "ascii",
  write: false,
  plugins: [withoutDefaultCredentialChain, withPrebundledSdk],
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
