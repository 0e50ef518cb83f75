// User and group names to ids, from /etc/passwd and /etc/group (Node has no getpwnam). The image under --root is
// asked first, so an image build resolves the image's users; the running system answers for names it lacks.
import { promises as fs } from "node:fs";
import { underRoot } from "../root/paths";

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

async function readText(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, "utf8");
  } catch {
    return undefined;
  }
}

/** A numeric id as given, or the named user's or group's id; undefined when no database knows the name. */
export async function resolveId(root: string, kind: IdKind, name: string): Promise<number | undefined> {
  if (/^\d+$/.test(name)) return Number(name);
  const places = [underRoot(root, databases[kind])];
  if (root !== "/") places.push(databases[kind]);
  for (const place of places) {
    const text = await readText(place);
    const id = text === undefined ? undefined : idFromDatabase(text, name);
    if (id !== undefined) return id;
  }
  return undefined;
}
