import { once } from "node:events";
import type { IncomingMessage, Server } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { DescribeAddressesCommand, EC2Client } from "@aws-sdk/client-ec2";
import { GetChangeCommand, Route53Client } from "@aws-sdk/client-route-53";
import type { AwsClientStub } from "aws-sdk-client-mock";
import { mockClient } from "aws-sdk-client-mock";
import type { Sdks } from "../../agent/aws/clients";
import { createAwsClients, endpointFor, operationOf, regionFrom } from "../../agent/aws/clients";
import { AwsCallError, ConfigError } from "../../agent/core/errors";
import { silentLogger } from "../../agent/core/log";
import { testAws } from "../support/context";
import { fakeClock } from "../support/fake-clock";

describe("the door to AWS", () => {
  // Mocked only here: the tests below send through real clients.
  let ec2: AwsClientStub<EC2Client>;
  let r53: AwsClientStub<Route53Client>;
  beforeAll(() => {
    ec2 = mockClient(EC2Client);
    r53 = mockClient(Route53Client);
  });
  afterAll(() => {
    ec2.restore();
    r53.restore();
  });
  beforeEach(() => {
    ec2.reset();
    r53.reset();
  });

  const awsError = (name: string, message: string) => Object.assign(new Error(message), { name });
  const describe1 = (sdk: Sdks["ec2"]) => new sdk.DescribeAddressesCommand({ AllocationIds: ["eipalloc-0abc"] });

  it("names the operation and the resource in a failed call's error, and keeps the AWS code", async () => {
    ec2.on(DescribeAddressesCommand).rejects(awsError("UnauthorizedOperation", "You are not authorized"));

    const error = await testAws({ ec2: true })
      .call("ec2", "eipalloc-0abc", describe1)
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AwsCallError);
    expect(error).toMatchObject({ operation: "DescribeAddresses", resource: "eipalloc-0abc" });
    expect((error as AwsCallError).code).toBe("UnauthorizedOperation");
    expect((error as Error).message).toBe(
      "DescribeAddresses eipalloc-0abc: UnauthorizedOperation: You are not authorized",
    );
  });

  it("turns a not-found code the caller names into its configuration error, with the key path", async () => {
    ec2.on(DescribeAddressesCommand).rejects(awsError("InvalidAllocationID.NotFound", "does not exist"));
    const notFound = {
      codes: ["InvalidAllocationID.NotFound"],
      error: () => new ConfigError("no Elastic IP eipalloc-0abc", undefined, "elastic_ip.allocation_id"),
    };

    const error = await testAws({ ec2: true })
      .call("ec2", "eipalloc-0abc", describe1, { notFound })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).keyPath).toBe("elastic_ip.allocation_id");
    expect((error as Error).message).toBe("elastic_ip.allocation_id: no Elastic IP eipalloc-0abc");
  });

  it("leaves any other code an AWS call error, even with a not-found mapping", async () => {
    ec2.on(DescribeAddressesCommand).rejects(awsError("RequestLimitExceeded", "slow down"));
    const notFound = { codes: ["InvalidAllocationID.NotFound"], error: () => new ConfigError("never") };

    const error = await testAws({ ec2: true })
      .call("ec2", "eipalloc-0abc", describe1, { notFound })
      .catch((e: unknown) => e);

    expect(error).toBeInstanceOf(AwsCallError);
    expect((error as AwsCallError).code).toBe("RequestLimitExceeded");
  });

  it("hands the run's abort signal to every send", async () => {
    ec2.on(DescribeAddressesCommand).resolves({ Addresses: [] });
    const signal = new AbortController().signal;

    await testAws({ ec2: true }, signal).call("ec2", "eipalloc-0abc", describe1);

    // The stub's type knows only the command; send's second argument is the options.
    const [, options] = ec2.commandCalls(DescribeAddressesCommand)[0]!.args as unknown[];
    expect((options as { abortSignal?: AbortSignal }).abortSignal).toBe(signal);
  });

  it("counts calls by service and operation, failed ones too", async () => {
    ec2.on(DescribeAddressesCommand).resolvesOnce({ Addresses: [] }).rejects(awsError("Throttling", "slow down"));
    r53.on(GetChangeCommand).resolves({ ChangeInfo: { Id: "C1", Status: "INSYNC", SubmittedAt: new Date() } });
    const aws = testAws({ ec2: true, route53: true });
    expect(aws.calls()).toEqual({});

    await aws.call("ec2", "eipalloc-0abc", describe1);
    await aws.call("ec2", "eipalloc-0abc", describe1).catch(() => undefined);
    await aws.call("route53", "C1", (sdk) => new sdk.GetChangeCommand({ Id: "C1" }));

    expect(aws.calls()).toEqual({ "ec2:DescribeAddresses": 2, "route53:GetChange": 1 });
  });

  it("hands out a copy of the counts", async () => {
    ec2.on(DescribeAddressesCommand).resolves({ Addresses: [] });
    const aws = testAws({ ec2: true });
    const before = aws.calls();

    await aws.call("ec2", "eipalloc-0abc", describe1);

    expect(before).toEqual({});
    expect(aws.calls()).toEqual({ "ec2:DescribeAddresses": 1 });
  });

  it("names an operation after its command class", () => {
    expect(operationOf(new GetChangeCommand({ Id: "C1" }))).toBe("GetChange");
  });
});

describe("the door over real clients: a call the deadline aborts fails", () => {
  // An endpoint on 127.0.0.1 that takes requests and never answers: only the abort signal can end a call.
  let server: Server;
  let endpoint: string;
  const held: IncomingMessage[] = [];
  beforeAll(async () => {
    server = createServer((req) => held.push(req));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    server.close();
    await once(server, "close");
  });
  beforeEach(() => {
    held.length = 0;
  });

  function door(controller: AbortController) {
    const clock = fakeClock();
    return createAwsClients({
      region: "us-east-1",
      env: { AWS_ENDPOINT_URL: endpoint },
      clock,
      deadline: { at: clock.now() + 60_000, signal: controller.signal },
      log: silentLogger,
      credentials: () => Promise.resolve({ accessKeyId: "AKIDTEST", secretAccessKey: "secret" }),
      // Credentials are injected: the instance profile is never read.
      imds: {
        getText: () => Promise.reject(new Error("no IMDS here")),
        getBytes: () => Promise.reject(new Error("no IMDS here")),
      },
    });
  }

  it("stops a call in flight when the deadline aborts, naming the operation and the resource", async () => {
    const controller = new AbortController();
    const aws = door(controller);
    const arrived = once(server, "request");

    const pending = aws.call("route53", "C1", (sdk) => new sdk.GetChangeCommand({ Id: "C1" })).catch((e: unknown) => e);
    await arrived;
    controller.abort(new Error("deadline"));
    const error = await pending;
    aws.destroy();

    expect(held).toHaveLength(1);
    expect(error).toBeInstanceOf(AwsCallError);
    expect(error).toMatchObject({ operation: "GetChange", resource: "C1" });
    expect((error as AwsCallError).code).toBe("AbortError");
    expect(aws.calls()).toEqual({ "route53:GetChange": 1 });
  });

  it("sends nothing once the deadline has passed", async () => {
    const controller = new AbortController();
    controller.abort(new Error("deadline"));
    const aws = door(controller);

    const error = await aws
      .call("ec2", "eipalloc-0abc", (sdk) => new sdk.DescribeAddressesCommand({ AllocationIds: ["eipalloc-0abc"] }))
      .catch((e: unknown) => e);
    aws.destroy();

    expect(error).toBeInstanceOf(AwsCallError);
    expect((error as AwsCallError).code).toBe("AbortError");
    expect(held).toHaveLength(0);
  });
});

describe("endpoints and region", () => {
  it("takes the service's own variable first, then AWS_ENDPOINT_URL, as the SDK does", () => {
    const env = { AWS_ENDPOINT_URL: "http://127.0.0.1:1", AWS_ENDPOINT_URL_ROUTE_53: "http://127.0.0.1:2" };
    expect(endpointFor("route53", env)).toBe("http://127.0.0.1:2");
    expect(endpointFor("ec2", env)).toBe("http://127.0.0.1:1");
    expect(endpointFor("elbv2", { AWS_ENDPOINT_URL_ELASTIC_LOAD_BALANCING_V2: "http://127.0.0.1:3" })).toBe(
      "http://127.0.0.1:3",
    );
    expect(endpointFor("ec2", {})).toBeUndefined();
  });

  it("ignores them all when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true", () => {
    expect(
      endpointFor("ec2", { AWS_ENDPOINT_URL: "http://127.0.0.1:1", AWS_IGNORE_CONFIGURED_ENDPOINT_URLS: "true" }),
    ).toBeUndefined();
  });

  it("uses the region from IMDS unless AWS_REGION overrides it", () => {
    expect(regionFrom("eu-west-1", {})).toBe("eu-west-1");
    expect(regionFrom("eu-west-1", { AWS_REGION: "us-east-2" })).toBe("us-east-2");
  });
});
