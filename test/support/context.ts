// Builds an ActionContext for unit tests, with a real SDK client (to be mocked by aws-sdk-client-mock).
import * as route53Sdk from "@aws-sdk/client-route-53";
import type { ActionContext } from "../../agent/actions/types";
import type { AwsClients } from "../../agent/aws/clients";
import type { Config } from "../../agent/config/schema";
import { configSchema } from "../../agent/config/schema";
import type { InstanceFacts } from "../../agent/instance/facts";
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
  tags: { Role: "web", Env: "test" },
};

const credentials = { accessKeyId: "AKIDTEST", secretAccessKey: "secret" };

export function testAws(): AwsClients {
  const route53 = new route53Sdk.Route53Client({ region: "us-east-1", credentials, maxAttempts: 1 });
  return {
    region: "us-east-1",
    route53: () => Promise.resolve({ client: route53, sdk: route53Sdk }),
    ec2: () => Promise.reject(new Error("EC2 not expected in this test")),
    elbv2: () => Promise.reject(new Error("ELBv2 not expected in this test")),
    loaded: () => ["@aws-sdk/client-route-53"],
    destroy: () => route53.destroy(),
  };
}

export function testContext(raw: unknown, over: Partial<ActionContext> = {}): ActionContext & { clock: FakeClock } {
  const config: Config = configSchema.parse(raw);
  const clock = fakeClock();
  return {
    config,
    instance,
    aws: testAws(),
    deadline: { at: clock.now() + 300_000, signal: new AbortController().signal },
    log: silentLogger,
    root: "/",
    upstream: {},
    previous: undefined,
    ...over,
    clock,
  };
}
