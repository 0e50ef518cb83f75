// cloud-init beside bootlace: whether it rewrites /etc/hosts over bootlace's block at every boot, and whether the form
// of bootlace's user-data is one the installed cloud-init complains about.
import type { Config } from "../config/schema";
import { etcHostsAdvice } from "../files/cloud-init";
import type { RootFs } from "../root/fs";
import type { CheckResult } from "./check";
import { ok, warn } from "./check";

/** From cloud-init 23.4 on, a warning makes `cloud-init status` "degraded" (and exit 2 where not patched out). */
const REPORTS_WARNINGS = [23, 4] as const;

/** The installed cloud-init's version (from cloudinit/version.py of its Python package), if it is installed. */
export async function cloudInitVersion(root: RootFs): Promise<string | undefined> {
  const pythons = ((await root.readDir("/usr/lib")) ?? []).filter((n) => /^python3(\.\d+)?$/.test(n)).sort();
  const places = ["/usr/lib/python3/dist-packages", ...pythons.map((p) => `/usr/lib/${p}/site-packages`)];
  for (const place of places) {
    const text = await root.readText(`${place}/cloudinit/version.py`);
    const version = text && /__VERSION__\s*=\s*["']([^"']+)["']/.exec(text)?.[1];
    if (version) return version;
  }
  return undefined;
}

function atLeast(version: string, [major, minor]: readonly [number, number]): boolean {
  const [a = 0, b = 0] = version.split(".").map((n) => parseInt(n, 10));
  return a > major || (a === major && b >= minor);
}

export async function cloudInitHosts(root: RootFs, config: Config): Promise<CheckResult> {
  const managesHosts = (config.files ?? []).some((f) => f.path === "/etc/hosts");
  if (!managesHosts) return ok("cloud-init hosts", "bootlace does not manage /etc/hosts");
  const advice = await etcHostsAdvice(root);
  if (advice === undefined) return ok("cloud-init hosts", "cloud-init leaves bootlace's block in /etc/hosts alone");
  return warn(
    "cloud-init hosts",
    advice,
    "a files entry for cloud-init's hosts template with the same block, or manage_etc_hosts: localhost",
  );
}

/**
 * Each form bootlace reads from user-data, by what cloud-init makes of it: a `bootlace:` key fails its schema (no
 * unknown top-level keys), a `#bootlace` document or a text/x-bootlace part is data it has no handler for and warns
 * about. The shell form is a script cloud-init runs, and says nothing of.
 */
export function cloudInitUserData(version: string, sources: string[]): CheckResult {
  const name = "cloud-init user-data";
  const userData = sources.filter((s) => s.startsWith("user-data"));
  if (userData.length === 0) return ok(name, `cloud-init ${version}; no bootlace configuration in user-data`);
  if (!atLeast(version, REPORTS_WARNINGS)) {
    return ok(name, `cloud-init ${version} reports none of bootlace's user-data forms`);
  }
  const schema = userData.filter((s) => /\bkey bootlace\b/.test(s));
  const unhandled = userData.filter((s) => /#bootlace|text\/x-bootlace/.test(s));
  const fix =
    "bootlace works the same; to keep cloud-init quiet, use the shell form (a #!/bin/sh part with " +
    "BOOTLACE_SET_<path>=value lines) or bake the configuration into /etc/bootlace (docs/user-data.md)";
  if (schema.length > 0) {
    return warn(
      name,
      `cloud-init ${version} refuses the top-level key bootlace in ${schema.join(", ")} ('bootlace' was unexpected, ` +
        "in `cloud-init schema --system`), and `cloud-init status` is degraded",
      fix,
    );
  }
  if (unhandled.length > 0) {
    return warn(
      name,
      `cloud-init ${version} has no handler for ${unhandled.join(", ")} and warns ("Unhandled non-multipart" or ` +
        '"Unhandled unknown content-type"): `cloud-init status` is degraded',
      fix,
    );
  }
  return ok(name, `cloud-init ${version} reports nothing about ${userData.join(", ")}`);
}
