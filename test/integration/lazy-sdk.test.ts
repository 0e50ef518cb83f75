// Start-up cost: an AWS SDK package is loaded only when the configuration needs its service.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { makeRoot, runBootlace } from "../harness/run-bundle";
import type { World } from "../harness/world";
import { startWorld } from "../harness/world";

jest.setTimeout(60_000);

let world: World;
let vpcId: string;

beforeAll(async () => {
  world = await startWorld();
  ({ vpcId } = await world.createVpc("10.40.0.0/16"));
  await world.createHostedZone("lazy.internal", { privateVpcId: vpcId });
});

afterAll(() => world?.close());

const loadedLine = (stderr: string): string | undefined => /aws sdk loaded: (.*)/.exec(stderr)?.[1];

async function bundle(args: string[], userData: string) {
  const instance = await world.launchInstance({ vpcId });
  const imds = await world.startImds({ ...instance, userData });
  const root = await makeRoot();
  return runBootlace([...args, "--log-level", "debug"], { imds: imds.endpoint, aws: world.proxy.endpoint, root });
}

const dnsConfig = "dns:\n  records:\n    - { zone: lazy.internal, name: 'x-{{instance.id}}.lazy.internal' }\n";

it("validate loads no AWS SDK and makes no AWS call", async () => {
  const root = await makeRoot();
  const file = join(root, "bootlace.yaml");
  await writeFile(file, dnsConfig);
  world.proxy.resetCalls();

  const result = await runBootlace(["validate", file, "--log-level", "debug"], {
    imds: "http://127.0.0.1:9",
    aws: world.proxy.endpoint,
    root,
  });

  expect(result.code).toBe(0);
  expect(loadedLine(result.stderr)).toBe("none");
  expect(world.proxy.calls).toEqual([]);
});

it("a run with nothing for AWS to do loads no AWS SDK", async () => {
  const result = await bundle(["run"], "#!/bin/sh\necho no bootlace here\n");

  expect(result.code).toBe(0);
  expect(loadedLine(result.stderr)).toBe("none");
});

it("a run with only Route 53 records loads only the Route 53 client", async () => {
  const result = await bundle(["run"], `#bootlace\n${dnsConfig}`);

  expect(result.code).toBe(0);
  expect(loadedLine(result.stderr)).toBe("@aws-sdk/client-route-53");
});

it("an Auto Scaling instance without an autoscaling section loads no Auto Scaling client; with one, it does", async () => {
  const inGroup = async (userData: string) => {
    const instance = await world.launchInstance({ vpcId });
    const imds = await world.startImds({ ...instance, userData, lifecycleState: "InService" });
    return runBootlace(["run", "--log-level", "debug"], {
      imds: imds.endpoint,
      aws: world.proxy.endpoint,
      root: await makeRoot(),
    });
  };

  const without = await inGroup(`#bootlace\n${dnsConfig}`);
  const withSection = await inGroup(`#bootlace\nautoscaling: {}\n${dnsConfig}`);

  expect(without.code).toBe(0);
  expect(loadedLine(without.stderr)).toBe("@aws-sdk/client-route-53");
  // moto knows no group for this instance: there is no hook to complete, and the run still succeeds.
  expect(withSection.code).toBe(0);
  expect(loadedLine(withSection.stderr)).toBe("@aws-sdk/client-auto-scaling, @aws-sdk/client-route-53");
});
