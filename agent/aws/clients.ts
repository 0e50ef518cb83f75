// The one place AWS clients are made: region, credentials, endpoints, retries. A client — and its SDK package — is
// loaded only when an action first asks for it, so --help, validate and a files-only run load no AWS SDK at all.
import type * as AutoScalingModule from "./sdk/autoscaling";
import type * as Ec2Module from "./sdk/ec2";
import type * as Elbv2Module from "./sdk/elbv2";
import type * as Route53Module from "./sdk/route53";
import type * as StsModule from "./sdk/sts";
import type { AwsCredentialIdentityProvider, Command } from "@smithy/types";
import type { RateLimiter } from "@smithy/util-retry";
import type { Clock } from "../core/clock";
import type { ConfigError } from "../core/errors";
import { AwsCallError, errorCode } from "../core/errors";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";
import { credentialsProvider } from "../instance/credentials";
import type { MetadataReader } from "../instance/imds";
import { Pacing, PatientRetryStrategy } from "./patience";

export type Env = Record<string, string | undefined>;

type Ec2Sdk = typeof Ec2Module;
type Route53Sdk = typeof Route53Module;
type Elbv2Sdk = typeof Elbv2Module;
type StsSdk = typeof StsModule;
type AutoScalingSdk = typeof AutoScalingModule;

export interface Service<C, S> {
  client: C;
  sdk: S;
}

/** The SDK package of each service, as handed to a call's command builder. */
export interface Sdks {
  ec2: Ec2Sdk;
  route53: Route53Sdk;
  elbv2: Elbv2Sdk;
  /** Only `doctor` uses it: GetCallerIdentity names the credentials' account and needs no permission. */
  sts: StsSdk;
  autoscaling: AutoScalingSdk;
}

export type ServiceName = keyof Sdks;

/** A command of any client whose output is O (what `new sdk.DescribeAddressesCommand(...)` is). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type SdkCommand<O> = Command<any, any, any, O, any>;

export interface CallOptions {
  /**
   * AWS error codes that mean "the thing the configuration names does not exist", and the configuration error to
   * throw for them (exit 2): e.g. InvalidAllocationID.NotFound → "no Elastic IP with allocation id …".
   */
  notFound?: { codes: readonly string[]; error: () => ConfigError };
}

/** Calls made so far, by "service:Operation" (the fleet work and the tests read it). */
export type CallCounts = Record<string, number>;

/**
 * The one door to AWS. Every call goes through call(): it loads the service's SDK on first use, applies the run's
 * deadline (abort signal), names the operation and the resource in any error (AwsCallError), turns a not-found the
 * caller names into a ConfigError, and counts the call. A test or a simulator can hand in its own.
 */
export interface Aws {
  region: string;
  call<K extends ServiceName, O>(
    service: K,
    resource: string,
    make: (sdk: Sdks[K]) => SdkCommand<O>,
    options?: CallOptions,
  ): Promise<O>;
  /** Calls made so far through this door. */
  calls(): CallCounts;
  destroy(): void;
}

export interface AwsClientsOptions {
  /** From IMDS; AWS_REGION in env overrides it. */
  region: string;
  env: Env;
  clock: Clock;
  deadline: Deadline;
  log: Logger;
  /** Injected credentials (in-process tests); default: the environment's keys, else the instance profile's. */
  credentials?: AwsCredentialIdentityProvider;
  /** IMDSv2 reads (bootlace's own client, bounded by the same deadline) for the instance profile's credentials. */
  imds: MetadataReader;
  /** The client-side budget of one AWS bucket (tests); default the SDK's DefaultRateLimiter (patience.ts). */
  rateLimiter?: () => RateLimiter;
  /** Random source in [0, 1) for retry jitter (tests). */
  random?: () => number;
  userAgent?: string;
}

/** The SDK's service ids, as used in AWS_ENDPOINT_URL_<ID>. */
const endpointVariable = {
  ec2: "EC2",
  route53: "ROUTE_53",
  elbv2: "ELASTIC_LOAD_BALANCING_V2",
  sts: "STS",
  autoscaling: "AUTO_SCALING",
} as const;

/**
 * The endpoint a client should use, from the standard variables of the given environment (which in a test may not
 * be process.env, so the SDK's own lookup cannot be relied on): service-specific first, then AWS_ENDPOINT_URL.
 */
export function endpointFor(service: keyof typeof endpointVariable, env: Env): string | undefined {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === "true") return undefined;
  return env[`AWS_ENDPOINT_URL_${endpointVariable[service]}`] || env.AWS_ENDPOINT_URL || undefined;
}

export function regionFrom(imdsRegion: string, env: Env): string {
  return env.AWS_REGION || env.AWS_DEFAULT_REGION || imdsRegion;
}

/** Every SDK package this process has loaded, by any agent: what `--log-level debug` reports at the end. */
const loadedInProcess = new Set<string>();

export function sdkPackagesLoaded(): string[] {
  return [...loadedInProcess].sort();
}

/** The door to AWS over clients made here; nothing outside agent/aws/ reaches a client. */
export function createAwsClients(o: AwsClientsOptions): Aws {
  const region = regionFrom(o.region, o.env);
  const made: { destroy(): void }[] = [];
  let shared: Promise<Record<string, unknown>> | undefined;
  // Made with the clients (the SDK's retry package is loaded only by a run that calls AWS).
  let newLimiter = o.rateLimiter;

  // Parts every client shares, made once: retry strategy, HTTP handler, credentials.
  const common = (): Promise<Record<string, unknown>> =>
    (shared ??= (async () => {
      // The credentials' IMDS reads start now, not at the first request's signing, after the SDK is loaded; the
      // provider keeps what it got (a failure here is the first call's to report).
      const credentials = o.credentials ?? defaultCredentials(o);
      credentials().catch(() => undefined);
      const [{ NodeHttpHandler }, { DefaultRateLimiter }] = await Promise.all([
        import("@smithy/node-http-handler"),
        import("@smithy/util-retry"),
      ]);
      newLimiter ??= () => new DefaultRateLimiter();
      return {
        region,
        credentials,
        // Retries until the deadline (patience.ts); the client-side budgets per bucket come with each command.
        retryStrategy: new PatientRetryStrategy(o.deadline, o.clock, o.random),
        requestHandler: new NodeHttpHandler({ connectionTimeout: 3000, requestTimeout: 15000 }),
        customUserAgent: o.userAgent,
      };
    })());

  const load = <C extends { destroy(): void }, S>(
    name: string,
    service: keyof typeof endpointVariable,
    importSdk: () => Promise<S>,
    make: (sdk: S, config: Record<string, unknown>) => C,
  ): (() => Promise<Service<C, S>>) => {
    let memo: Promise<Service<C, S>> | undefined;
    return () =>
      (memo ??= (async () => {
        const started = o.clock.now();
        const [sdk, config] = await Promise.all([importSdk(), common()]);
        const endpoint = endpointFor(service, o.env);
        const client = make(sdk, endpoint ? { ...config, endpoint } : config);
        made.push(client);
        loadedInProcess.add(name);
        o.log.debug(`loaded ${name}`, { ms: o.clock.now() - started, endpoint: endpoint ?? "default", region });
        return { client, sdk };
      })());
  };

  const services = {
    ec2: load(
      "@aws-sdk/client-ec2",
      "ec2",
      () => import("./sdk/ec2"),
      (s, c) => new s.EC2Client(c),
    ),
    route53: load(
      "@aws-sdk/client-route-53",
      "route53",
      () => import("./sdk/route53"),
      (s, c) => new s.Route53Client(c),
    ),
    elbv2: load(
      "@aws-sdk/client-elastic-load-balancing-v2",
      "elbv2",
      () => import("./sdk/elbv2"),
      (s, c) => new s.ElasticLoadBalancingV2Client(c),
    ),
    sts: load(
      "@aws-sdk/client-sts",
      "sts",
      () => import("./sdk/sts"),
      (s, c) => new s.STSClient(c),
    ),
    autoscaling: load(
      "@aws-sdk/client-auto-scaling",
      "autoscaling",
      () => import("./sdk/autoscaling"),
      (s, c) => new s.AutoScalingClient(c),
    ),
  };
  const pacing = new Pacing(o.log, o.deadline.signal, () => {
    // A command is prepared only after its client (and so common()) is made.
    if (!newLimiter) throw new Error("aws: a command was prepared before its client was made");
    return newLimiter();
  });
  const door: Aws = awsDoor(
    region,
    services,
    o.deadline.signal,
    () => {
      // What the run cost in calls: the fleet work reads it (docs/development.md, the fleet benchmark).
      const { attempts, throttled } = pacing.attempts();
      const calls = door.calls();
      if (Object.keys(calls).length > 0) {
        o.log.debug(`aws calls: ${describeCounts(calls)}`, {
          attempts: describeCounts(attempts),
          throttled: describeCounts(throttled),
        });
      }
      made.forEach((c) => c.destroy());
    },
    (command, service, operation, resource) => pacing.attach(command, service, operation, resource),
  );
  return door;
}

/** "ec2:DescribeAddresses 2, route53:GetChange 1" (or "none"). */
function describeCounts(counts: CallCounts): string {
  const entries = Object.entries(counts).sort(([a], [b]) => a.localeCompare(b));
  return entries.length > 0 ? entries.map(([k, n]) => `${k} ${n}`).join(", ") : "none";
}

/** The services a door sends through: each loads its client and SDK package on first use. */
export type ServiceLoaders = { [K in ServiceName]: () => Promise<Service<{ destroy(): void }, Sdks[K]>> };

/** Prepares one command before it is sent (createAwsClients: the client-side budget of its AWS bucket). */
export type PrepareCommand = (command: object, service: ServiceName, operation: string, resource: string) => void;

/** The door over a set of clients (createAwsClients' own, or a test's mocked ones). */
export function awsDoor(
  region: string,
  services: ServiceLoaders,
  signal: AbortSignal,
  destroy: () => void,
  prepare?: PrepareCommand,
): Aws {
  const counts: CallCounts = {};
  return {
    region,
    call: async (service, resource, make, options) => {
      const { client, sdk } = await services[service]();
      const command = make(sdk);
      const operation = operationOf(command);
      const key = `${service}:${operation}`;
      counts[key] = (counts[key] ?? 0) + 1;
      prepare?.(command, service, operation, resource);
      try {
        // Every client's send takes any of its commands; the door's typing is per service, not per client class.
        const send = (client as unknown as { send: (c: unknown, o: unknown) => Promise<unknown> }).send.bind(client);
        return (await send(command, { abortSignal: signal })) as never;
      } catch (error) {
        const code = errorCode(error);
        if (code !== undefined && options?.notFound?.codes.includes(code)) throw options.notFound.error();
        throw new AwsCallError(operation, resource, error);
      }
    },
    calls: () => ({ ...counts }),
    destroy,
  };
}

/** "DescribeAddresses" from a DescribeAddressesCommand (esbuild keeps class names: see scripts/build.mjs). */
export function operationOf(command: object): string {
  return command.constructor.name.replace(/Command$/, "");
}

/**
 * AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the agent's environment, else the instance profile over IMDSv2 with
 * bootlace's own patience (instance/credentials.ts). Not the SDK's chain: its IMDS provider falls back to IMDSv1.
 */
function defaultCredentials(o: AwsClientsOptions): AwsCredentialIdentityProvider {
  return credentialsProvider({
    env: o.env,
    imds: o.imds,
    clock: o.clock,
    deadline: o.deadline,
    log: o.log.child({ component: "credentials" }),
  });
}
