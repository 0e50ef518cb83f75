// Where bootlace keeps things, all taken under --root (tests and image builds use a folder; production uses "/").
import { join } from "node:path";

export const paths = {
  bakedFile: "/etc/bootlace/bootlace.yaml",
  bakedDir: "/etc/bootlace/conf.d",
  state: "/var/lib/bootlace/state.json",
  lock: "/run/bootlace.lock",
};

/** An absolute path taken under root. */
export function underRoot(root: string, path: string): string {
  return root === "/" ? path : join(root, path);
}
