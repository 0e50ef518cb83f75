// The environment of the user's commands: how values reach `check` and `on_change` (never through their text), and a
// minimal base so nothing of bootlace's own environment leaks into them (AWS credentials, NOTIFY_SOCKET, NODE_*).
// Pure: the values in, the environment and what was left out (for warnings) out.
import { isIPv4 } from "../core/names";
import { envSuffix, INSTANCE_ENV, tagEnvName } from "../template/command";
import type { PeerView, TemplateView } from "../template/render";

/** What bootlace passes on from its own environment, when set; PATH always (a default when bootlace had none). */
export const PASSED_ON = ["PATH", "HOME", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "TZ"] as const;
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface CommandEnvInput {
  /** The file's view: the instance's values (the Elastic IP claimed in this run included). */
  view: TemplateView;
  /** The instance's own tags; undefined when they could not be read (then no BOOTLACE_TAG_*). */
  tags: Record<string, string> | undefined;
  /** Every discovered peer of each configured set (not only those safe for the file: only addresses are passed). */
  peers: Record<string, PeerView[]>;
  /** The real file, as the host sees it (under --root). */
  path: string;
  /** check only: the staged file, as the host sees it. */
  staged?: string;
}

export interface CommandEnv {
  env: Record<string, string>;
  /** What was left out and why: a value holding NUL, tag keys that map to one name, a peer address that is not IPv4. */
  leftOut: string[];
}

export function commandEnv(input: CommandEnvInput, own: NodeJS.ProcessEnv = process.env): CommandEnv {
  const env: Record<string, string> = {};
  const leftOut: string[] = [];
  for (const name of PASSED_ON) {
    const value = own[name];
    if (value !== undefined && !value.includes("\0")) env[name] = value;
  }
  env.PATH ??= DEFAULT_PATH;

  const set = (name: string, value: string, what: string): void => {
    if (value.includes("\0")) leftOut.push(`${name} not set: ${what} holds a NUL character`);
    else env[name] = value;
  };
  set("BOOTLACE_PATH", input.path, "the path");
  if (input.staged !== undefined) set("BOOTLACE_STAGED", input.staged, "the staged path");
  for (const [key, name] of Object.entries(INSTANCE_ENV)) {
    set(name, input.view.instance[key as keyof typeof INSTANCE_ENV], `instance.${key}`);
  }

  const byName = new Map<string, string[]>();
  for (const key of Object.keys(input.tags ?? {}).sort()) {
    const name = tagEnvName(key);
    byName.set(name, [...(byName.get(name) ?? []), key]);
  }
  for (const [name, keys] of byName) {
    if (keys.length > 1) {
      leftOut.push(`${name} not set: the tags ${keys.map((k) => JSON.stringify(k)).join(", ")} all map to it`);
    } else {
      set(name, input.tags![keys[0]!]!, `this instance's tag ${JSON.stringify(keys[0])}`);
    }
  }

  for (const [setName, peers] of Object.entries(input.peers)) {
    const ips = peers.filter((p) => {
      if (isIPv4(p.ip)) return true;
      leftOut.push(
        `peer ${p.id} left out of BOOTLACE_PEERS_${envSuffix(setName)}: ${JSON.stringify(p.ip)} is not IPv4`,
      );
      return false;
    });
    env[`BOOTLACE_PEERS_${envSuffix(setName)}`] = ips.map((p) => p.ip).join(" ");
  }
  return { env, leftOut };
}
