// User and group names to ids, from /etc/passwd and /etc/group (Node has no getpwnam). The image under --root is
// asked first, so an image build resolves the image's users; the running system answers for names it lacks.
import { promises as fs } from "node:fs";
import type { RootFs } from "../root/fs";
import { unlessAbsent } from "../root/fs";
import { fsError } from "../root/fs-error";

export type IdKind = "user" | "group";

const databases: Record<IdKind, string> = { user: "/etc/passwd", group: "/etc/group" };

/** The id of `name` in a passwd- or group-format text; undefined when it is not there. */
export function idFromDatabase(text: string, name: string): number | undefined {
  for (const line of text.split("\n")) {
    const [entry, , id] = line.split(":");
    if (entry === name && id !== undefined && /^\d+$/.test(id)) return Number(id);
  }
  return undefined;
}

/**
 * The running system's own database, for a name the image under --root lacks: the one read bootlace makes outside
 * the root, on purpose (an image built in a folder is given the ids of the system building it). Only absence is
 * taken as "no entry".
 */
async function hostDatabase(path: string): Promise<string | undefined> {
  try {
    return await unlessAbsent(fs.readFile(path, "utf8"));
  } catch (error) {
    throw fsError(`cannot read ${path}`, error);
  }
}

/** A numeric id as given, or the named user's or group's id; undefined when no database knows the name. */
export async function resolveId(root: RootFs, kind: IdKind, name: string): Promise<number | undefined> {
  if (/^\d+$/.test(name)) return Number(name);
  const image = await root.readText(databases[kind]);
  const id = image === undefined ? undefined : idFromDatabase(image, name);
  if (id !== undefined || root.root === "/") return id;
  const host = await hostDatabase(databases[kind]);
  return host === undefined ? undefined : idFromDatabase(host, name);
}
