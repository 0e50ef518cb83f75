// The shape of what each action saves in state.json for `stop` and the next run, checked when state.json is read: a
// part that does not match is dropped (the action then knows nothing from before) instead of breaking the action.
// The compile-time checks at the end keep each schema in step with the action's own type.
import { z } from "zod";
import type { DnsSaved } from "../actions/dns";
import type { EipSaved } from "../actions/elastic-ip";
import type { FilesSaved } from "../actions/files";
import type { TargetGroupsSaved } from "../actions/target-groups";
import type { ActionName } from "../actions/types";

/** A path read back from state is checked as one from the configuration: absolute, no "." or ".." parts. */
const instancePath = z
  .string()
  .regex(/^\/[^\0]*$/, "expected an absolute path")
  .refine((p) => !p.split("/").some((part) => part === "." || part === ".."), {
    error: (i) => `expected a path without "." or ".." parts, got ${JSON.stringify(i.input)}`,
  });

const eipSaved = z.object({ allocationId: z.string(), publicIp: z.string(), publicDns: z.string() });

const targetGroupsSaved = z.object({
  deregisterOnShutdown: z.boolean(),
  targets: z.array(
    z.object({
      arn: z.string(),
      name: z.string(),
      id: z.string(),
      port: z.number().int(),
      availabilityZone: z.literal("all").exactOptional(),
    }),
  ),
});

const zoneRef = z.object({ id: z.string(), name: z.string(), private: z.boolean() });

const dnsSaved = z.object({
  owner: z.string(),
  records: z.array(
    z.object({
      zoneId: z.string(),
      name: z.string(),
      type: z.enum(["A", "AAAA"]),
      value: z.string(),
      ttl: z.number(),
      deleteOnShutdown: z.boolean(),
      setIdentifier: z.string().exactOptional(),
    }),
  ),
  ptrs: z
    .array(z.object({ zoneId: z.string(), name: z.string(), values: z.array(z.string()), keep: z.array(z.string()) }))
    .exactOptional(),
  cache: z
    .object({
      zones: z.record(z.string(), zoneRef).exactOptional(),
      reverse: z.object({ vpcId: z.string(), zones: z.array(zoneRef) }).exactOptional(),
    })
    .exactOptional(),
});

const filesSaved = z.object({
  blocks: z.array(z.object({ path: instancePath, name: z.string(), comment: z.string() })),
});

/** Per action, the schema of what it saves; undefined for an action that saves nothing. */
export const savedSchemas: Record<ActionName, z.ZodType | undefined> = {
  elastic_ip: eipSaved,
  load_balancer: targetGroupsSaved,
  dns: dnsSaved,
  peers: undefined,
  files: filesSaved,
};

// ---- in step with the actions' types: every saved value passes its schema, and the schema gives every field back.

type Accepts<S extends z.ZodType, T> = [T] extends [z.input<S>]
  ? [keyof T] extends [keyof z.output<S>]
    ? true
    : false
  : false;
const inStep: [
  Accepts<typeof eipSaved, EipSaved>,
  Accepts<typeof targetGroupsSaved, TargetGroupsSaved>,
  Accepts<typeof dnsSaved, DnsSaved>,
  Accepts<typeof filesSaved, FilesSaved>,
  Accepts<typeof targetGroupsSaved.shape.targets.element, TargetGroupsSaved["targets"][number]>,
  Accepts<typeof dnsSaved.shape.records.element, DnsSaved["records"][number]>,
  Accepts<typeof filesSaved.shape.blocks.element, FilesSaved["blocks"][number]>,
] = [true, true, true, true, true, true, true];
void inStep;
