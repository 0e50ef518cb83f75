// cloud-init and /etc/hosts: with manage_etc_hosts true (or "template"), cloud-init renders /etc/hosts from its own
// template at every boot (cc_update_etc_hosts), dropping bootlace's block until bootlace runs again. This finds that
// setting where cloud-init reads it, so bootlace can say so and how to avoid it.
import { join } from "node:path";
import { parse } from "yaml";
import type { RootFs } from "../root/fs";

export interface CloudConfigSource {
  source: string;
  text: string;
}

export interface Setting {
  value: unknown;
  source: string;
}

function parseMapping(text: string): Record<string, unknown> | undefined {
  try {
    const doc: unknown = parse(text);
    return doc !== null && typeof doc === "object" && !Array.isArray(doc)
      ? (doc as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined; // not ours to judge: cloud-init reports its own parse errors
  }
}

/** A key's effective value across cloud-config sources, the later winning as in cloud-init's merge. */
export function effective(
  sources: CloudConfigSource[],
  read: (doc: Record<string, unknown>) => unknown,
): Setting | undefined {
  let found: Setting | undefined;
  for (const s of sources) {
    const doc = parseMapping(s.text);
    const value = doc ? read(doc) : undefined;
    if (value !== undefined) found = { value, source: s.source };
  }
  return found;
}

/** cloud-init's translate_bool with the "template" addon: the values that make it render /etc/hosts whole. */
export function rendersEtcHosts(value: unknown): boolean {
  if (value === true || value === 1) return true;
  return typeof value === "string" && ["true", "yes", "on", "1", "template"].includes(value.trim().toLowerCase());
}

/** cloud-init picks hosts.<os family>.tmpl; the usual families of EC2 distributions. */
const families: Record<string, string> = {
  ubuntu: "debian",
  debian: "debian",
  amazon: "redhat",
  rhel: "redhat",
  centos: "redhat",
  fedora: "redhat",
  rocky: "redhat",
  almalinux: "redhat",
  sles: "suse",
  opensuse: "suse",
};

/**
 * cloud.cfg, cloud.cfg.d/*.cfg in name order, then the instance's cloud-config from user-data, as cloud-init saved it.
 * A file or directory that is not there is skipped; one that cannot be read is an error.
 */
export async function cloudConfigSources(root: RootFs): Promise<CloudConfigSource[]> {
  const dir = "/etc/cloud/cloud.cfg.d";
  const names = ((await root.readDir(dir)) ?? []).filter((n) => n.endsWith(".cfg"));
  const paths = ["/etc/cloud/cloud.cfg", ...names.sort().map((n) => `${dir}/${n}`)];
  const userData = ["/var/lib/cloud/instance/cloud-config.txt", "/var/lib/cloud/instance/user-data.txt"];
  const sources: CloudConfigSource[] = [];
  for (const path of [...paths, ...userData]) {
    const text = await root.readText(path);
    if (text === undefined) continue;
    if (userData.includes(path) && !text.startsWith("#cloud-config")) continue;
    sources.push({ source: path, text });
  }
  return sources;
}

/** Advice when cloud-init would overwrite /etc/hosts at the next boot; undefined when it would not. */
export async function etcHostsAdvice(root: RootFs): Promise<string | undefined> {
  const sources = await cloudConfigSources(root);
  const manage = effective(sources, (d) => d.manage_etc_hosts);
  if (!manage || !rendersEtcHosts(manage.value)) return undefined;
  const distro = effective(sources, (d) => (d.system_info as Record<string, unknown> | undefined)?.distro);
  const family = typeof distro?.value === "string" ? families[distro.value] : undefined;
  const templates = ((await root.readDir("/etc/cloud/templates")) ?? [])
    .filter((n) => /^hosts\..+\.tmpl$/.test(n))
    .map((n) => join("/etc/cloud/templates", n));
  const preferred = family ? `/etc/cloud/templates/hosts.${family}.tmpl` : undefined;
  const template =
    preferred && (templates.includes(preferred) || templates.length === 0)
      ? preferred
      : templates.length > 0
        ? templates.join(" or ")
        : "/etc/cloud/templates/hosts.<os family>.tmpl";
  return (
    `cloud-init's manage_etc_hosts is ${JSON.stringify(manage.value)} (${manage.source}): at every boot cloud-init ` +
    `rewrites /etc/hosts from ${template}, and bootlace's block is gone until bootlace runs again. To keep it, ` +
    `manage the template as well (a files entry for ${template} with the same block), or set ` +
    `manage_etc_hosts: localhost (or false) in /etc/cloud/cloud.cfg.d/`
  );
}
