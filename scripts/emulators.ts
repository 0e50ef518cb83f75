// Try bootlace on a laptop: starts moto, the AWS fidelity proxy and an IMDS emulator for one seeded instance, prints
// the environment to export, and runs until SIGINT/SIGTERM. Bundled by scripts/build.mjs into dist/emulators.js.
import { readFileSync } from "node:fs";
import { startWorld, type World } from "../test/harness/world";

const USAGE = `usage: node dist/emulators.js [--user-data FILE] [--tags K=V]... [--route53-pending-ms N]

  --user-data FILE         served as the instance's user-data (as is: gzip and MIME work too)
  --tags K=V               an instance tag, served by IMDS (tags enabled); repeatable
  --route53-pending-ms N   how long a Route 53 change stays PENDING before INSYNC (default 0)`;

interface Options {
  userData?: Buffer;
  tags: Record<string, string>;
  route53PendingMs: number;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { tags: {}, route53PendingMs: 0 };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? splitOnce(arg, "=") : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else if (flag === "--user-data") {
      o.userData = readFileSync(value());
    } else if (flag === "--tags") {
      const [k, v] = splitOnce(value(), "=");
      if (!k || v === undefined) throw new Error(`--tags expects K=V, got "${argv[i] ?? ""}"`);
      o.tags[k] = v;
    } else if (flag === "--route53-pending-ms") {
      const raw = value();
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0)
        throw new Error(`--route53-pending-ms expects a whole number of ms, got "${raw}"`);
      o.route53PendingMs = n;
    } else {
      throw new Error(`unknown argument "${arg}"`);
    }
  }
  return o;
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const at = s.indexOf(sep);
  return at < 0 ? [s, undefined] : [s.slice(0, at), s.slice(at + sep.length)];
}

async function main(): Promise<void> {
  let options: Options;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`emulators: ${(e as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  const world = await startWorld({ route53PendingMs: options.route53PendingMs });
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) process.exit(1); // a second Ctrl-C: do not wait for the cleanup
    closing = true;
    console.error(`emulators: ${signal}, stopping`);
    world.close().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error(`emulators: cleanup failed: ${String(e)}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));

  try {
    await seedAndPrint(world, options);
  } catch (e) {
    await world.close();
    throw e;
  }
}

/** One instance in its own VPC, plus what the example configuration in docs refers to: a private zone, a pool address, a target group. */
async function seedAndPrint(world: World, o: Options): Promise<void> {
  const vpc = await world.createVpc("10.0.0.0/16");
  const tags = Object.keys(o.tags).length > 0 ? o.tags : { Name: "bootlace-demo", Role: "web" };
  const instance = await world.launchInstance({ vpcId: vpc.vpcId, tags, ...(o.userData && { userData: o.userData }) });
  const imds = await world.startImds(instance, { tagsEnabled: true });
  const zoneId = await world.createHostedZone("example.internal", { privateVpcId: vpc.vpcId });
  const eip = await world.allocateAddress({ Pool: "web" });
  const tg = await world.createTargetGroup({ name: "web", vpcId: vpc.vpcId, port: 80 });

  console.log(`# bootlace emulators are running; Ctrl-C stops them. In another shell:
export AWS_EC2_METADATA_SERVICE_ENDPOINT=${imds.endpoint}
export AWS_EC2_METADATA_V1_DISABLED=true
export AWS_ENDPOINT_URL=${world.proxy.endpoint}
unset AWS_PROFILE AWS_REGION AWS_DEFAULT_REGION AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN
# instance     ${instance.instanceId} ${instance.privateIpv4} in ${instance.vpcId} (${instance.region}), tags ${JSON.stringify(instance.tags)}
# user-data    ${o.userData ? `${o.userData.length} bytes` : "none"}
# zone         example.internal (private, ${zoneId})
# elastic ip   ${eip.allocationId} ${eip.publicIp}, tagged Pool=web
# target group ${tg}
# moto direct  ${world.moto.endpoint} (for inspection with the aws CLI: --endpoint-url; not counted by the proxy)
# ready`);
}

main().catch((e: unknown) => {
  console.error(`emulators: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
