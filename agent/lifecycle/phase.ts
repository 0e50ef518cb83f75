// The warm pool phase: in a Warmed:* lifecycle state an instance is parked, so bootlace only prepares it (files that
// need no peers and no addresses) and wires it at InService. Pure: the configuration and the state in, the phase out.
import type { Config, FileConfig } from "../config/schema";
import { fieldUse, inlineTemplates } from "../template/analysis";
import { commandMentions } from "../template/command";
import { mentionsElasticIp } from "../template/render";
import { isWarmed } from "./signals";

/** prepared: a Warmed:* run (files only); wired: everything. */
export type Phase = "prepared" | "wired";

export function phaseFor(config: Config, lifecycleState: string | undefined): Phase {
  return (config.autoscaling?.warm_pool ?? "auto") === "auto" && isWarmed(lifecycleState) ? "prepared" : "wired";
}

/**
 * Whether a file can be written while the instance is parked: its templates name no peer and no address the wiring
 * changes (the Elastic IP, the public address), and its commands name no such BOOTLACE_* variable. A whole-file
 * template is known only once read, so it waits.
 */
export function preparesFile(f: FileConfig): boolean {
  if (f.template !== undefined) return false;
  const templates = inlineTemplates(f);
  const use = fieldUse(templates);
  const commands = [commandMentions(f.check), commandMentions(f.on_change)];
  return (
    !use.allPeerSets &&
    use.peerSets.size === 0 &&
    !templates.some(mentionsElasticIp) &&
    !commands.some((c) => c.peers || c.elasticIp)
  );
}

/** The configuration a prepare run applies: no address, target, record or peer; only the files that prepare. */
export function prepareConfig(config: Config): Config {
  const { elastic_ip: _eip, load_balancer: _lb, dns: _dns, peers: _peers, files, ...rest } = config;
  return { ...rest, ...(files !== undefined && { files: files.filter(preparesFile) }) };
}

/** The files a prepare run leaves for InService, by path (for the log and the result). */
export function deferredFiles(config: Config): string[] {
  return (config.files ?? []).filter((f) => !preparesFile(f)).map((f) => f.path);
}
