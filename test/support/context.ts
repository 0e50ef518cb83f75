// Builds an ActionContext for unit tests, with a real SDK client (to be mocked by aws-sdk-client-mock).
import * as autoscalingSdk from "@aws-sdk/client-auto-scaling";
import * as ec2Sdk from "@aws-sdk/client-ec2";
import * as elbv2Sdk from "@aws-sdk/client-elastic-load-balancing-v2";
import * as route53Sdk from "@aws-sdk/client-route-53";
import * as stsSdk from "@aws-sdk/client-sts";
import type { ActionContext } from "../../agent/actions/types";
import type { Aws } from "../../agent/aws/clients";
import { awsDoor } from "../../agent/aws/clients";
import type { Config } from "../../agent/config/schema";
import { configSchema } from "../../agent/config/schema";
import type { InstanceFacts } from "../../agent/instance/facts";
import type { Tags } from "../../agent/instance/tags";
import { tagsReader } from "../../agent/instance/tags";
import { RootFs } from "../../agent/root/fs";
import { silentLogger } from "../../agent/core/log";
import type { FakeClock } from "./fake-clock";
import { fakeClock } from "./fake-clock";

export const instance: InstanceFacts = {
  id: "i-0123456789abcdef0",
  region: "us-east-1",
  az: "us-east-1a",
  accountId: "123456789012",
  privateIpv4: "10.0.1.5",
  mac: "02:00:00:00:00:01",
  vpcId: "vpc-0abc",
  subnetId: "subnet-0abc",
  vpcCidr: "10.0.0.0/16",
};

/** The tags IMDS exposes for the test instance (unless a test says IMDS exposes none). */
export const instanceTags: Tags = { Role: "web", Env: "test" };

const clientConfig = {
  region: "us-east-1",
  credentials: { accessKeyId: "AKIDTEST", secretAccessKey: "secret" },
  maxAttempts: 1,
};

/**
 * AWS for a unit test: real SDK clients (to be mocked by aws-sdk-client-mock) for the services named, behind the same
 * door the agent uses; a service not named fails if called.
 */
export function testAws(
  clients: { ec2?: boolean; route53?: boolean; elbv2?: boolean; sts?: boolean; autoscaling?: boolean } = {
    route53: true,
  },
  signal: AbortSignal = new AbortController().signal,
): Aws {
  const made: { destroy(): void }[] = [];
  const service = <C extends { destroy(): void }, S>(
    name: string,
    wanted: boolean | undefined,
    make: () => C,
    sdk: S,
  ) => {
    let client: C | undefined;
    return () => {
      if (!wanted) return Promise.reject(new Error(`${name} not expected in this test`));
      if (!client) made.push((client = make()));
      return Promise.resolve({ client, sdk });
    };
  };
  const services = {
    route53: service("Route 53", clients.route53, () => new route53Sdk.Route53Client(clientConfig), route53Sdk),
    ec2: service("EC2", clients.ec2, () => new ec2Sdk.EC2Client(clientConfig), ec2Sdk),
    elbv2: service("ELBv2", clients.elbv2, () => new elbv2Sdk.ElasticLoadBalancingV2Client(clientConfig), elbv2Sdk),
    sts: service("STS", clients.sts, () => new stsSdk.STSClient(clientConfig), stsSdk),
    autoscaling: service(
      "Auto Scaling",
      clients.autoscaling,
      () => new autoscalingSdk.AutoScalingClient(clientConfig),
      autoscalingSdk,
    ),
  };
  return awsDoor("us-east-1", services, signal, () => made.forEach((c) => c.destroy()));
}

/**
 * An action's context over the test instance. `imdsTags: null` stands for an IMDS that does not expose tags (the
 * context then reads them from the EC2 API through `aws`).
 */
export function testContext(
  raw: unknown,
  over: Partial<ActionContext> & { imdsTags?: Tags | null; root?: string } = {},
): ActionContext & { clock: FakeClock } {
  const config: Config = configSchema.parse(raw);
  const clock = fakeClock();
  const { imdsTags, root, ...rest } = over;
  const aws = rest.aws ?? testAws();
  const facts = rest.instance ?? instance;
  return {
    config,
    instance: facts,
    tags: tagsReader(facts, imdsTags === null ? undefined : (imdsTags ?? instanceTags), aws, silentLogger),
    aws,
    fs: new RootFs(root ?? "/"),
    deadline: { at: clock.now() + 300_000, signal: new AbortController().signal },
    log: silentLogger,
    upstream: {},
    previous: undefined,
    ...rest,
    clock,
  };
}
