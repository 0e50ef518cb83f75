// doctor: every boot failure we know, each named in one line with its cause and its fix. It reads the world as run
// does (readWorld, then withWiring without the lock) and is read-only: no changing AWS call, no file written.
import type { Resolver } from "node:dns/promises";
import type { LoadedConfig } from "../config/load";
import { configErrorsIn } from "../core/errors";
import type { Deadline } from "../core/retry";
import type { CheckResult } from "../doctor/check";
import { bounded, warn, fail, formatChecks, notChecked, ok } from "../doctor/check";
import { cloudInitHosts, cloudInitUserData, cloudInitVersion } from "../doctor/cloud-init";
import { credentialsAndClock } from "../doctor/credentials";
import { peerNames, records, resolverFrom, vpcDns } from "../doctor/dns";
import { imdsFailure, imdsOk, imdsTags, lifecycle } from "../doctor/imds";
import { permissions } from "../doctor/permissions";
import { lastRun, unit } from "../doctor/unit";
import { ImdsClient, imdsEndpointFrom } from "../instance/imds";
import { RootFs } from "../root/fs";
import { readState } from "../root/state";
import type { Wiring, World } from "../wiring/procedure";
import { readWorld, withWiring } from "../wiring/procedure";
import type { Session } from "./session";
import { exitCodes } from "./session";

/**
 * How long one check may take (never past --deadline). IMDS gets less, and at most half the deadline: a metadata
 * service silent for that long is not going to answer, and the checks after it need the rest.
 */
const IMDS_MS = 15_000;
const CHECK_MS = 60_000;

export async function doctor(s: Session): Promise<number> {
  const resolver = resolverFrom(s.o.env);
  const root = new RootFs(s.args.root);
  // The local checks first: they take no time, and must not find the deadline spent by a silent IMDS.
  const local = Promise.all([bounded("unit", s.clock, s.deadline, CHECK_MS, () => unit(root)), readState(root)]);
  const read: { world?: World } = {};
  const imdsMs = Math.min(IMDS_MS, (s.deadline.at - s.clock.now()) / 2);
  const lines = await bounded("imds", s.clock, s.deadline, imdsMs, (deadline) => readTheWorld(s, deadline, read));
  const { world } = read;
  if (world) {
    const more = await withWiring(s, world, { deadline: s.deadline, lock: false }, (w) =>
      worldChecks(s, world, w, resolver),
    );
    lines.push(...more);
  } else {
    lines.push(notChecked("credentials, permissions, dns", "they need the instance's metadata and configuration"));
  }
  resolver.cancel();
  const [unitLines, state] = await local;
  lines.push(...unitLines, lastRun(state.state, world?.instance.id));
  if (state.problems.length > 0) {
    lines.push(
      warn("state", `state.json is damaged: ${state.problems.join("; ")}`, "the next run sets it aside and goes on"),
    );
  }
  s.o.stdout(formatChecks(lines, s.args.json));
  return lines.some((l) => l.status === "fail") ? exitCodes.failed : exitCodes.ok;
}

/** readWorld, as run reads it; the lines say how IMDS and the configuration went, `read.world` is what it found. */
async function readTheWorld(s: Session, deadline: Deadline, read: { world?: World }): Promise<CheckResult[]> {
  const endpoint = imdsEndpointFrom(s.o.env);
  try {
    read.world = await readWorld(s, deadline);
  } catch (error) {
    const config = configErrorsIn(error);
    if (config.length === 0) return [imdsFailure(error, s.o.env)];
    const messages = config.map((e) => e.message).join("; ");
    return [
      ok("imds", `IMDSv2 at ${endpoint} answered`),
      fail("config", messages, "fix the configuration (`bootlace validate` shows every problem)"),
    ];
  }
  const { instance, loaded } = read.world;
  return [imdsOk(endpoint, instance), ok("config", `from ${loaded.sources.join(", ") || "built-in defaults only"}`)];
}

/** Everything that needs the instance, its configuration and AWS; the AWS checks only once the credentials work. */
async function worldChecks(s: Session, world: World, w: Wiring, resolver: Resolver): Promise<CheckResult[]> {
  const { instance, loaded } = world;
  const ctx = w.runner.context;
  const check = (name: string, fn: () => Promise<CheckResult | CheckResult[]>) =>
    bounded(name, s.clock, s.deadline, CHECK_MS, fn);
  const imds = new ImdsClient({
    endpoint: imdsEndpointFrom(s.o.env),
    clock: s.clock,
    deadline: s.deadline,
    log: s.log.child({ component: "imds" }),
  });
  const keysGiven = Boolean(s.o.credentials ?? (s.o.env.AWS_ACCESS_KEY_ID && s.o.env.AWS_SECRET_ACCESS_KEY));
  try {
    const independent = Promise.all([
      check("lifecycle", () => lifecycle(imds)),
      check("dns", () => records(ctx, resolver)),
      check("cloud-init", () => cloudInit(ctx.fs, loaded)),
    ]);
    const credentials = await check("credentials", () =>
      credentialsAndClock(w.aws, imds, instance, { keysGiven }, () => s.clock.now()),
    );
    const usable = credentials.some((l) => l.name === "credentials" && l.status === "ok");
    const [permissionLines, vpcLines, peerLines] = usable
      ? await Promise.all([
          check("permissions", () => permissions(ctx, w.runner.actions)),
          check("vpc dns", () => vpcDns(w.aws, instance)),
          check("peers", () => peerNames({ ...ctx, upstream: {}, previous: undefined }, resolver)),
        ])
      : [[notChecked("permissions, vpc dns, peers", "they need credentials AWS accepts")], [], []];
    const [lifecycleLines, dnsLines, cloudLines] = await independent;
    return [
      imdsTags(instance, world.imdsTags),
      ...lifecycleLines,
      ...credentials,
      ...permissionLines,
      ...vpcLines,
      ...dnsLines,
      ...peerLines,
      ...cloudLines,
    ];
  } finally {
    await imds.close();
  }
}

async function cloudInit(root: RootFs, loaded: LoadedConfig): Promise<CheckResult[]> {
  const version = await cloudInitVersion(root);
  if (version === undefined) return [ok("cloud-init", "not installed")];
  return [await cloudInitHosts(root, loaded.config), cloudInitUserData(version, loaded.sources)];
}
