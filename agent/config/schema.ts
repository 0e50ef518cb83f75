// The one schema of bootlace's configuration document: types, defaults, and the text of docs/configuration.md.
import Mustache from "mustache";
import * as z from "zod";
import { isDnsName, isIPv4, isIPv6 } from "../core/names";
import type { CommandKey } from "../template/command";
import { commandProblems } from "../template/command";
import { templateProblems } from "../template/analysis";
import type { Kind, Scope } from "../template/shape";

const tagKey = z.string().min(1).max(128);
const tagValue = z.string().max(256);

const tagFilter = z
  .record(tagKey, tagValue)
  .refine((tags) => Object.keys(tags).length > 0, "needs at least one tag")
  .describe("tag key → value; values may use templates such as {{tags.Env}}");

const template = z.string().superRefine((text, ctx) => {
  try {
    Mustache.parse(text);
  } catch (error) {
    ctx.addIssue({ code: "custom", message: `not a valid template: ${(error as Error).message}` });
  }
});

/** check / on_change: a string for /bin/sh (bootlace's own paths only) or an argv list (template/command.ts). */
const command = (key: CommandKey) =>
  z
    .union([z.string().min(1, "the command is empty"), z.array(z.string()).min(1, "the list needs the program")], {
      error: "expected a command: a string (run by /bin/sh) or a list of strings (the program and its arguments)",
    })
    .superRefine((cmd, ctx) => {
      for (const p of commandProblems(cmd, key)) ctx.addIssue({ code: "custom", path: p.path, message: p.message });
    });

const dnsName = z.string().refine(isDnsName, { error: (i) => `not a DNS name: ${JSON.stringify(i.input)}` });

const port = z.number().int().min(1).max(65535);

const elasticIp = z
  .strictObject({
    allocation_id: z
      .string()
      .regex(/^eipalloc-[0-9a-f]{8,17}$/, "expected an allocation id like eipalloc-0abc1234")
      .optional()
      .describe("A fixed Elastic IP by allocation id."),
    pool: z
      .strictObject({ tags: tagFilter })
      .optional()
      .describe("Claim a free Elastic IP carrying these tags (only unassociated addresses are candidates)."),
    allow_reassociation: z
      .boolean()
      .default(false)
      .describe("true: take the address even if it is associated with another instance."),
    private_ip: z
      .string()
      .refine(isIPv4, "expected an IPv4 address")
      .optional()
      .describe("Private IPv4 of the primary interface to associate with (default: the primary private IP)."),
    handoff: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .optional()
      .describe(
        "Seconds to wait (default 120) for an address held by an instance that is leaving (stopping, shutting down, or not InService in this instance's Auto Scaling group) to be released; then it is taken from that instance. An address held by an InService instance is never taken without allow_reassociation. 0: no handoff.",
      ),
  })
  .describe("Associate an Elastic IP with this instance.");

const targetGroup = z
  .strictObject({
    arn: z
      .string()
      .regex(/^arn:aws[a-z-]*:elasticloadbalancing:[a-z0-9-]+:\d{12}:targetgroup\/[A-Za-z0-9-]{1,32}\/[0-9a-f]+$/, {
        error: "expected a target group ARN (arn:aws:elasticloadbalancing:REGION:ACCOUNT:targetgroup/NAME/ID)",
      })
      .optional()
      .describe("Target group ARN."),
    name: z
      .string()
      .regex(/^[A-Za-z0-9-]{1,32}$/, "expected a target group name (1-32 letters, digits, hyphens)")
      .optional()
      .describe("Target group name (looked up in the instance's region)."),
    port: port.optional().describe("Port to register; default: the target group's port."),
  })
  .superRefine((tg, ctx) => {
    if ((tg.arn === undefined) === (tg.name === undefined)) {
      ctx.addIssue({ code: "custom", message: "set exactly one of arn or name" });
    }
  })
  .describe("One target group, by arn or name.");

const loadBalancer = z
  .strictObject({
    target_groups: z.array(targetGroup).default([]).describe("Target groups to register this instance in."),
    wait_healthy: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(300)
      .describe("Seconds to wait for 'healthy' after registering; 0 = do not wait."),
    deregister_on_shutdown: z
      .boolean()
      .default(true)
      .describe("`bootlace stop` deregisters and waits while the target drains."),
  })
  .describe("Register this instance in ELBv2 target groups.");

const ipv4ValueKeywords = ["private_ipv4", "public_ipv4", "elastic_ip"] as const;

/** A set identifier as rendered: it also names the record's ownership record (a DNS label), so lower case only. */
export const SET_IDENTIFIER = /^[a-z0-9_-]{1,63}$/;
export const SET_IDENTIFIER_FORM = "1-63 lower-case letters, digits, '-' or '_'";

const record = z
  .strictObject({
    zone: dnsName.optional().describe("Hosted zone by name."),
    zone_id: z
      .string()
      .regex(/^(\/hostedzone\/)?Z[A-Z0-9]{1,32}$/, "expected a hosted zone id like Z0123456789ABC")
      .optional()
      .describe("Hosted zone by id (instead of zone)."),
    private: z
      .boolean()
      .optional()
      .describe("Choose the private (true) or public (false) zone when both share the name."),
    name: template.describe("Record name; a template, e.g. {{instance.id}}.example.internal."),
    type: z.enum(["A", "AAAA"]).default("A").describe("Record type."),
    value: z
      .string()
      .default("private_ipv4")
      .describe(
        "private_ipv4 | public_ipv4 | elastic_ip (A); ipv6, the primary IPv6 address (AAAA); a literal address.",
      ),
    ttl: z.number().int().min(0).max(2147483647).default(60).describe("TTL in seconds."),
    delete_on_shutdown: z
      .boolean()
      .default(false)
      .describe("`bootlace stop` deletes the record, if it still holds this instance's value."),
    takeover: z.boolean().default(false).describe("Overwrite a record that exists and is not bootlace's (failover)."),
    set_identifier: template
      .optional()
      .describe(
        `A routing-policy record of this instance under a name many share; a template, e.g. {{instance.id}}, rendering to ${SET_IDENTIFIER_FORM}. Needs multivalue, weight or failover.`,
      ),
    multivalue: z.boolean().optional().describe("true: a multivalue answer record (with set_identifier)."),
    weight: z.number().int().min(0).max(255).optional().describe("A weighted record's weight (with set_identifier)."),
    failover: z.enum(["PRIMARY", "SECONDARY"]).optional().describe("A failover record's role (with set_identifier)."),
    health_check_id: z
      .string()
      .regex(/^[0-9a-fA-F-]{1,64}$/, "expected a Route 53 health check id like 8f3a5b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b")
      .optional()
      .describe("Route 53 answers with this record only while the health check is healthy (with set_identifier)."),
    reverse: z.boolean().optional().describe("Keep this record's PTR record (default: dns.reverse)."),
  })
  .superRefine((r, ctx) => {
    if ((r.zone === undefined) === (r.zone_id === undefined)) {
      ctx.addIssue({ code: "custom", message: "set exactly one of zone or zone_id" });
    }
    const ipv4Keyword = (ipv4ValueKeywords as readonly string[]).includes(r.value);
    if (r.type === "AAAA" && ipv4Keyword) {
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message: `${r.value} is IPv4; an AAAA record needs ipv6 or an IPv6 address`,
      });
    } else if (r.type === "A" && r.value === "ipv6") {
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message: "ipv6 is the instance's IPv6 address: set type: AAAA",
      });
    } else if (!ipv4Keyword && r.value !== "ipv6" && !(r.type === "A" ? isIPv4(r.value) : isIPv6(r.value))) {
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message:
          r.type === "A"
            ? `expected private_ipv4, public_ipv4, elastic_ip or an IPv4 address, got ${JSON.stringify(r.value)}`
            : `expected ipv6 or an IPv6 address, got ${JSON.stringify(r.value)}`,
      });
    }
    const policies = [
      r.multivalue === true && "multivalue",
      r.weight !== undefined && "weight",
      r.failover !== undefined && "failover",
    ].filter((p): p is string => p !== false);
    if (policies.length > 1) {
      ctx.addIssue({
        code: "custom",
        message: `set only one of multivalue, weight or failover, not ${policies.join(" and ")}`,
      });
    }
    if (r.set_identifier === undefined) {
      for (const key of [...policies, ...(r.health_check_id !== undefined ? ["health_check_id"] : [])]) {
        ctx.addIssue({
          code: "custom",
          path: [key],
          message: `${key} needs set_identifier (this instance's own record under the shared name), e.g. set_identifier: "{{instance.id}}"`,
        });
      }
    } else {
      if (policies.length === 0) {
        ctx.addIssue({
          code: "custom",
          path: ["set_identifier"],
          message: "a record with set_identifier needs a routing policy: multivalue: true, weight or failover",
        });
      }
      if (!r.set_identifier.includes("{{") && !SET_IDENTIFIER.test(r.set_identifier)) {
        ctx.addIssue({
          code: "custom",
          path: ["set_identifier"],
          message: `expected ${SET_IDENTIFIER_FORM}, got ${JSON.stringify(r.set_identifier)}`,
        });
      }
    }
  })
  .describe("One Route 53 record.");

const dns = z
  .strictObject({
    wait: z.enum(["insync", "none"]).default("insync").describe("Wait until Route 53 reports the change INSYNC."),
    owner_id: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 letters, digits, '.', '_' or '-'")
      .default("bootlace")
      .describe(
        "Owner written in the ownership TXT record; bootlace updates only records with the same owner (or takeover).",
      ),
    reverse: z
      .boolean()
      .default(false)
      .describe(
        "Also keep the PTR record of each A/AAAA record in the private reverse zone (in-addr.arpa, ip6.arpa) associated with this VPC.",
      ),
    reap: z
      .boolean()
      .default(false)
      .describe(
        "Delete records under this instance's names whose ownership record names an instance that no longer runs.",
      ),
    records: z.array(record).default([]).describe("Records to upsert."),
  })
  .describe("Route 53 records for this instance.");

const peerSet = z
  .strictObject({
    tags: tagFilter.describe("Running instances in the same VPC with these tags (templates allowed)."),
    min: z.number().int().min(0).default(0).describe("Wait until at least this many peers exist..."),
    timeout: z.number().int().min(0).max(3600).default(300).describe("...for at most this many seconds."),
  })
  .describe("A set of peers discovered by tags.");

const replaceEdit = z
  .strictObject({
    match: z
      .string()
      .superRefine((source, ctx) => {
        try {
          new RegExp(source);
        } catch (error) {
          ctx.addIssue({ code: "custom", message: `not a valid regular expression: ${(error as Error).message}` });
        }
      })
      .describe("A regular expression (JavaScript syntax) matched against each line."),
    with: template.describe("The replacement, a template rendered before it is substituted."),
  })
  .describe("One line edit.");

/** Absolute, and without "." or ".." parts: under --root a ".." would leave the root. */
const absolutePath = (what: string) =>
  z
    .string()
    .regex(/^\/[^\0]*$/, `expected an absolute path to ${what}`)
    .refine((p) => !p.split("/").some((part) => part === "." || part === ".."), {
      error: (i) => `expected a path without "." or ".." parts, got ${JSON.stringify(i.input)}`,
    });

const file = z
  .strictObject({
    path: absolutePath("a file").describe("The file to manage (under --root when given)."),
    block: template.optional().describe("A managed block between marker lines; the rest of the file is kept."),
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, "expected 1-64 letters, digits, '.', '_' or '-'")
      .default("main")
      .describe("The block's name in its marker lines; a block renamed (or removed) is removed from the file."),
    comment: z
      .string()
      .regex(/^[^\s\w]{1,8}$/, 'expected what starts a comment line in this file, like "#", "//" or ";"')
      .default("#")
      .describe("What starts a comment line in this file: the block's marker lines begin with it."),
    position: z.enum(["top", "bottom"]).optional().describe("Where a new block goes (default bottom)."),
    replace: z
      .array(replaceEdit)
      .min(1)
      .optional()
      .describe("Regex line edits: each `match` is replaced by the rendered `with`."),
    template: absolutePath("a Mustache template")
      .optional()
      .describe("Path of a Mustache template rendered as the whole file (under --root when given)."),
    mode: z
      .string()
      .regex(/^0?[0-7]{3}$/, 'expected an octal mode like "0640"')
      .optional()
      .describe("File mode; default: kept from the existing file, else 0644."),
    owner: z
      .string()
      .regex(/^([a-z_][a-z0-9_-]*\$?|\d+)$/, "expected a user name or uid")
      .optional()
      .describe("Owner; default: kept from the existing file."),
    group: z
      .string()
      .regex(/^([a-z_][a-z0-9_-]*\$?|\d+)$/, "expected a group name or gid")
      .optional()
      .describe("Group; default: kept from the existing file."),
    check: command("check")
      .optional()
      .describe(
        'Command run on the staged file before it replaces the real one, in the --root folder; non-zero leaves the real file untouched. A list is run without a shell, each element a template rendered into one argument (the first, the program, written literally): ["php", "-l", "{{staged}}"]. A string is run by /bin/sh -c and may use only {{staged}} and {{path}}, shell-quoted; values reach it as BOOTLACE_* environment variables.',
      ),
    on_change: command("on_change")
      .optional()
      .describe(
        "Command run after all files are written, when this file changed; a command named by several files runs once. A list (argv, no shell) or a string (/bin/sh -c, may use only {{path}}), as for check.",
      ),
    backup: z.boolean().default(true).describe("Keep the previous content as PATH.bootlace-bak."),
    follow_symlinks: z.boolean().default(false).describe("Write through a symlink instead of refusing it."),
  })
  .superRefine((f, ctx) => {
    const kinds = [f.block, f.replace, f.template].filter((k) => k !== undefined).length;
    if (kinds !== 1) ctx.addIssue({ code: "custom", message: "set exactly one of block, replace or template" });
    if (f.position !== undefined && f.block === undefined) {
      ctx.addIssue({ code: "custom", path: ["position"], message: "position applies to block only" });
    }
  })
  .describe("A file bootlace keeps in step with the instance and its peers.");

const watch = z
  .strictObject({
    interval: z.number().int().min(5).max(86400).default(60).describe("Seconds between peer discoveries."),
    notice_interval: z
      .number()
      .int()
      .min(1)
      .max(60)
      .optional()
      .describe(
        "Seconds (default 5) between reads of the Auto Scaling lifecycle state, the spot interruption notice and the rebalance recommendation (jittered ±20 %; AWS suggests 5 for spot notices).",
      ),
  })
  .describe("`bootlace watch` settings.");

/** AWS's lifecycle hook names: 1-255 letters, digits, '-', '_' and '/'. */
const hookName = z
  .string()
  .regex(/^[A-Za-z0-9\-_/]{1,255}$/, "expected a lifecycle hook name (letters, digits, -, _, /)");

const autoscaling = z
  .strictObject({
    warm_pool: z
      .enum(["auto", "off"])
      .default("auto")
      .describe(
        "auto: in a Warmed:* lifecycle state (IMDS autoscaling/target-lifecycle-state) `run` only prepares the instance (files that need no peers and no addresses) and wires it at InService: the next boot, or the `watch` pass that sees it. off: ignore the lifecycle state.",
      ),
    launch_hook: z
      .union([z.enum(["auto", "off"]), hookName])
      .default("auto")
      .describe(
        "auto: complete this instance's pending launch lifecycle action(s) of its group once every action succeeded (registered healthy, records INSYNC), with heartbeats while waiting; a hook name: only that hook; off: none.",
      ),
    termination_hook: z
      .enum(["auto", "off"])
      .default("auto")
      .describe(
        "auto: when `watch` sees the lifecycle state Terminated, the stop path runs with heartbeats to the termination hook while draining, then CONTINUE. off: the stop path runs, the hook is left to others.",
      ),
    on_failure: z
      .enum(["abandon", "continue"])
      .default("abandon")
      .describe("The launch hook's result when an action failed."),
    group: z
      .string()
      .regex(/^[A-Za-z0-9 _.@+=,-]{1,255}$/, "expected an Auto Scaling group name")
      .optional()
      .describe(
        "The Auto Scaling group this configuration is for: `bootlace iam-policy` scopes the lifecycle actions to it, and the hooks are completed only in it.",
      ),
  })
  .describe(
    "The Auto Scaling lifecycle (needs its permissions; without this section no Auto Scaling call is made, but warm pools are still honoured).",
  );

const spot = z
  .strictObject({
    on_interruption: z
      .enum(["stop", "off"])
      .default("stop")
      .describe(
        "`watch`: a spot instance-action notice runs the stop path within the time the notice leaves; off: nothing.",
      ),
    on_rebalance: z
      .enum(["stop", "log", "off"])
      .default("log")
      .describe("`watch`: a rebalance recommendation runs the stop path (stop), is logged once (log), or ignored."),
  })
  .describe("Spot instances: what `watch` does with interruption notices and rebalance recommendations.");

/** The sections a profile may set (everything but version/profile/profiles). */
const sections = {
  elastic_ip: elasticIp.optional(),
  load_balancer: loadBalancer.optional(),
  dns: dns.optional(),
  peers: z
    .record(z.string().regex(/^[a-z][a-z0-9_]*$/, "peer set names are lower-case identifiers"), peerSet)
    .optional()
    .describe("Peer sets, by name: peers.<name> in templates."),
  files: z.array(file).optional().describe("Files to keep in step."),
  watch: watch.optional(),
  autoscaling: autoscaling.optional(),
  spot: spot.optional(),
};

const profileSchema = z.strictObject(sections).describe("A named set of settings merged over the top level.");

export const documentShape = z.strictObject({
  version: z.literal(1).default(1).describe("Configuration format version."),
  profile: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, "expected a profile name")
    .optional()
    .describe("Selects profiles.<name>, merged over the top level."),
  profiles: z
    .record(z.string().regex(/^[A-Za-z0-9_.-]+$/, "profile names are letters, digits, '.', '_' or '-'"), profileSchema)
    .optional()
    .describe("Named profiles (usually in the baked file)."),
  ...sections,
});

/**
 * The effective configuration, after merging. Rules within one list item (a record, a file, a target group) live on
 * the item's schema, because lists replace whole so an item is complete wherever it is written, and zod then reports
 * them alongside other sections' mistakes. Rules that span keys of a map that merges across sources (elastic_ip) apply
 * here, to the merged result, not to partial sources.
 */
export const configSchema = documentShape.superRefine((doc, ctx) => {
  const eip = doc.elastic_ip;
  if (eip && (eip.allocation_id === undefined) === (eip.pool === undefined)) {
    ctx.addIssue({ code: "custom", path: ["elastic_ip"], message: "set exactly one of allocation_id or pool" });
  }
  const paths = new Map<string, number>();
  doc.files?.forEach((f, i) => {
    const first = paths.get(f.path);
    if (first !== undefined) {
      ctx.addIssue({
        code: "custom",
        path: ["files", i, "path"],
        message: `${f.path} is already managed by files.${first}; two entries for one file would fight`,
      });
    } else {
      paths.set(f.path, i);
    }
  });
  // Every template's variables, where they are known: unknown ones, and escapers out of place, are refused here.
  const check = (template: string, path: (string | number)[], scope: Scope) => {
    let problems: string[];
    try {
      problems = templateProblems(template, scope);
    } catch {
      return; // a template that does not parse is reported on its own key
    }
    for (const message of problems) ctx.addIssue({ code: "custom", path, message });
  };
  const names: Scope = { escapers: false };
  const inFiles: Scope = { peerSets: Object.keys(doc.peers ?? {}), escapers: true };
  doc.dns?.records.forEach((r, i) => {
    check(r.name, ["dns", "records", i, "name"], names);
    if (r.set_identifier !== undefined) check(r.set_identifier, ["dns", "records", i, "set_identifier"], names);
  });
  for (const [k, v] of Object.entries(doc.elastic_ip?.pool?.tags ?? {})) {
    check(v, ["elastic_ip", "pool", "tags", k], names);
  }
  for (const [set, p] of Object.entries(doc.peers ?? {})) {
    for (const [k, v] of Object.entries(p.tags)) check(v, ["peers", set, "tags", k], names);
  }
  doc.files?.forEach((f, i) => {
    if (f.block !== undefined) check(f.block, ["files", i, "block"], inFiles);
    f.replace?.forEach((r, j) => check(r.with, ["files", i, "replace", j, "with"], inFiles));
  });
  // An argv command's elements are rendered with the files' view and bootlace's own paths, each into one argument, so
  // escapers have no place there. A string command's variables are commandProblems' to refuse.
  doc.files?.forEach((f, i) => {
    for (const key of ["check", "on_change"] as const) {
      const cmd = f[key];
      if (!Array.isArray(cmd)) continue;
      // {{staged}} in on_change is commandProblems' to refuse, with its own reason.
      const own: Record<string, Kind> = { staged: "text", path: "text" };
      cmd.forEach((element, j) => check(element, ["files", i, key, j], { ...inFiles, escapers: false, extra: own }));
    }
  });
  if (doc.profile !== undefined && doc.profiles?.[doc.profile] === undefined) {
    const known = Object.keys(doc.profiles ?? {});
    ctx.addIssue({
      code: "custom",
      path: ["profile"],
      message: `no profile named ${JSON.stringify(doc.profile)} (known: ${known.length ? known.join(", ") : "none"})`,
    });
  }
});

export type Config = z.output<typeof configSchema>;
export type RecordConfig = NonNullable<Config["dns"]>["records"][number];
export type FileConfig = NonNullable<Config["files"]>[number];
export type PeerSetConfig = NonNullable<Config["peers"]>[string];
export type TargetGroupConfig = NonNullable<Config["load_balancer"]>["target_groups"][number];
export type AutoScalingConfig = NonNullable<Config["autoscaling"]>;
