// The explicit, ordered list of actions: an action comes after every action it may depend on.
import { dnsAction } from "./dns";
import { elasticIpAction } from "./elastic-ip";
import { filesAction } from "./files";
import { peersAction } from "./peers";
import { targetGroupsAction } from "./target-groups";
import type { Action } from "./types";

export const actions: readonly Action[] = [elasticIpAction, targetGroupsAction, dnsAction, peersAction, filesAction];
