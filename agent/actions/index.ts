// The explicit, ordered list of actions: an action comes after every action it may depend on.
import type { Config } from "../config/schema";
import { ConfigError } from "../errors";
import { dnsAction } from "./dns";
import { elasticIpAction } from "./elastic-ip";
import { targetGroupsAction } from "./target-groups";
import type { Action, ActionName } from "./types";

/** Sections of the configuration whose actions this version does not have yet: refused, never silently ignored. */
const notYetAvailable = (name: ActionName, present: (c: Config) => boolean): Action => ({
  name,
  enabled: present,
  dependsOn: () => [],
  plan: () => Promise.reject(new ConfigError(`is not available in this version of bootlace yet`, undefined, name)),
  apply: () => Promise.reject(new Error("unreachable")),
});

export const actions: readonly Action[] = [
  elasticIpAction,
  targetGroupsAction,
  dnsAction,
  notYetAvailable("peers", (c) => Object.keys(c.peers ?? {}).length > 0),
  notYetAvailable("files", (c) => (c.files?.length ?? 0) > 0),
];
