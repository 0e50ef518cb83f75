// What may land in a file, value by value: each kind checked for what it claims to be, free text held to a token
// alphabet unless an escaper takes it, names in /etc/hosts held to DNS names that are not reserved; and the escapes
// for the places where a rendered value is not plain text (regex replacements, shell commands). Pure.
import type { Rendered, Use } from "../template/engine";
import { jsonQuoted } from "../core/log";
import { isDnsName, isIPv4, isIPv6 } from "../core/names";

const hex = (c: string): string => `U+${c.codePointAt(0)!.toString(16).padStart(4, "0").toUpperCase()}`;

// eslint-disable-next-line no-control-regex -- the vertical tab and form feed are line breaks to some readers
const lineBreak = /^[\n\r\u000b\u000c\u0085\u2028\u2029]$/u;

/** Why one character may never land in a file, in any context: line breaks, controls, invalid UTF-16, invisibles. */
function controlProblem(c: string): string | undefined {
  if (lineBreak.test(c)) return `has a line break (${hex(c)})`;
  if (/^\p{Cs}$/u.test(c)) return `is not valid UTF-16 (a lone surrogate ${hex(c)})`;
  if (/^\p{Cc}$/u.test(c)) return `has the control character ${hex(c)}`;
  if (/^\p{Cf}$/u.test(c)) return `has the invisible format character ${hex(c)}`;
  if (/^[\p{Co}\p{Cn}]$/u.test(c)) return `has the private-use or unassigned character ${hex(c)}`;
  return undefined;
}

/** The characters free text may not carry outside an escaper, beyond controlProblem's: see docs (the token alphabet). */
const outsideAlphabet = /^[\s\p{Z}'"`\\$#;,<>|&(){}]$/u;

/**
 * Why free text (a tag value) may not land in a file as it is, or undefined when it may: the token alphabet refuses
 * empty values, whitespace and Unicode separators, quotes, backslash, $ # ; , < > | & ( ) { }, a leading @ or +,
 * control and format characters, and lone surrogates.
 */
export function freeTextProblem(value: string): string | undefined {
  // An empty value would drop a field from its line: pg_hba.conf's "host  all 10.0.0.5/32 md5" loses its user.
  if (value === "") return "is empty";
  // A leading @ or + is a file inclusion or a group in pg_hba.conf; a comma makes a list there.
  if (value.startsWith("@") || value.startsWith("+")) return `starts with a '${value[0]}'`;
  for (const c of value) {
    const control = controlProblem(c);
    if (control) return control;
    if (!outsideAlphabet.test(c)) continue;
    if (/^[\s\p{Z}]$/u.test(c)) return `has whitespace (${hex(c)})`;
    return `has a ${c === "'" ? `"'"` : `'${c}'`}`;
  }
  return undefined;
}

/** Why free text may not land inside an escaper: there only line breaks, controls and invalid UTF-16 are refused. */
export function escapedTextProblem(value: string): string | undefined {
  for (const c of value) {
    const control = controlProblem(c);
    if (control) return control;
  }
  return undefined;
}

const identifier = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

/** Files whose lines are pg_hba.conf(5) lines, where some words are keywords. */
export function isPgHbaFile(path: string): boolean {
  return /(^|\/)pg_hba\.conf$/.test(path);
}

/** Words pg_hba.conf reads as keywords when unquoted: a tag `all` would widen a rule to every database or user. */
const pgHbaKeywords = new Set(["all", "sameuser", "samerole", "samegroup", "replication", "samehost", "samenet"]);

/**
 * Why a value of a kind may not land in a file (an empty value, such as a missing public address, may, except free
 * text). In pg_hba.conf, free text is never one of its keywords.
 */
export function useProblem(use: Use, file: { pgHba?: boolean } = {}): string | undefined {
  if (file.pgHba && use.kind === "text" && !use.escaper && pgHbaKeywords.has(use.value.toLowerCase())) {
    return "is a pg_hba.conf keyword";
  }
  const { value } = use;
  switch (use.kind) {
    case "address":
      return value === "" || isIPv4(value) || isIPv6(value) ? undefined : "is not an IP address";
    case "dns":
      return value === "" || isDnsName(value) ? undefined : "is not a DNS name";
    case "id":
      return value === "" || identifier.test(value) ? undefined : "is not an identifier";
    case "text":
      return use.escaper ? escapedTextProblem(value) : freeTextProblem(value);
  }
}

/** The value as messages name it: `tag Env "x"`, `tag Name "x"` (a peer's name), `instance.hostname "x"`. */
export function describeUse(use: Use): string {
  const quoted = jsonQuoted(use.value);
  if (use.tag !== undefined) return `tag ${use.tag} ${quoted}`;
  if (use.origin.of === "peer") {
    if (use.field === "name" && use.origin.peer.tags.Name !== undefined) return `tag Name ${quoted}`;
    return `${use.field === "ip" ? "address" : (use.field ?? use.name)} ${quoted}`;
  }
  return `${use.name} ${quoted}`;
}

// ---- /etc/hosts ------------------------------------------------------------------------------------------------

/** Files whose lines are hosts(5) lines: /etc/hosts, and cloud-init's templates of it. */
export function isHostsFile(path: string): boolean {
  return path === "/etc/hosts" || /^\/etc\/cloud\/templates\/hosts\.[^/]+\.tmpl$/.test(path);
}

const reservedNames = new Set([
  "localhost",
  "localhost.localdomain",
  "broadcasthost",
  "ip6-localhost",
  "ip6-loopback",
  "ip6-localnet",
  "ip6-mcastprefix",
  "ip6-allnodes",
  "ip6-allrouters",
  "ip6-allhosts",
]);

/**
 * Whether a name must never be mapped by a value in /etc/hosts: localhost and its family (localhost6*, *.localhost,
 * ip6-*), and, when given, the instance's own hostname and its first label.
 */
export function isReservedHostName(name: string, ownHostname?: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  if (reservedNames.has(n) || n.startsWith("localhost6") || n.endsWith(".localhost")) return true;
  if (!ownHostname) return false;
  const own = ownHostname.toLowerCase().replace(/\.$/, "");
  return n === own || n === own.split(".")[0];
}

/** A field of a hosts line made (at least partly) of values, and why it may not be there. */
export interface HostsProblem {
  field: string;
  problem: string;
  /** The values to blame: a peer's when any peer's value is in the field; empty when the template's text is at fault. */
  culprits: Use[];
}

const isAddress = (s: string): boolean => isIPv4(s) || isIPv6(s);

function nameProblem(field: string, ownHostname: string | undefined): string | undefined {
  if (!isDnsName(field) || field.split(".").includes("*") || isAddress(field)) return "is not a DNS name";
  if (isReservedHostName(field, ownHostname)) return "is a reserved name";
  return undefined;
}

/**
 * The hosts(5) rules on rendered text, for the fields values are in: on a line, the first field is an address and the
 * others are names (`lines`: a block or a whole file); in a `fragment` (a replace's `with`), a field of values is an
 * address or a name. Names are DNS names, never reserved; the instance's own hostname is reserved for a field made of
 * a tag and on a line that holds a peer's value (the instance may still name itself with its own facts:
 * {{instance.private_ipv4}} {{instance.hostname}}).
 */
export function hostsProblems(
  rendered: Pick<Rendered, "text" | "spans">,
  ownHostname: string | undefined,
  mode: "lines" | "fragment",
): HostsProblem[] {
  const problems: HostsProblem[] = [];
  const spans = rendered.spans.filter((s) => s.end > s.start);
  let offset = 0;
  for (const line of rendered.text.split("\n")) {
    const start = offset;
    offset += line.length + 1;
    const hash = line.indexOf("#");
    const content = hash === -1 ? line : line.slice(0, hash);
    const fields = [...content.matchAll(/[^ \t\v\f\r]+/g)].map((m) => {
      const from = start + m.index;
      const to = from + m[0].length;
      return { text: m[0], uses: spans.filter((s) => s.start < to && s.end > from).flatMap((s) => s.uses) };
    });
    if (!fields.some((f) => f.uses.length > 0)) continue;
    const lineHasPeer = fields.some((f) => f.uses.some((u) => u.origin.of === "peer"));
    // The instance names itself with its own facts ({{instance.private_ipv4}} {{instance.hostname}}); a tag, its own
    // or a peer's, never maps the instance's hostname, nor does anything on a peer's line.
    const ownNameMayBe = (uses: Use[]): boolean => !lineHasPeer && uses.every((u) => u.tag === undefined);
    const blame = (uses: Use[]): Use[] => {
      const peers = uses.filter((u) => u.origin.of === "peer");
      return peers.length > 0 ? peers : uses;
    };
    fields.forEach((f, i) => {
      if (mode === "lines" && i === 0) {
        if (!isAddress(f.text)) problems.push({ field: f.text, problem: "is not an address", culprits: blame(f.uses) });
        return;
      }
      if (f.uses.length === 0) return;
      if (mode === "fragment" && isAddress(f.text) && f.uses.every((u) => u.kind === "address")) return;
      const problem = nameProblem(f.text, ownNameMayBe(f.uses) ? undefined : ownHostname);
      if (problem) problems.push({ field: f.text, problem, culprits: blame(f.uses) });
    });
  }
  return problems;
}

// ---- escapes of other places --------------------------------------------------------------------------------------

/** For replace's `with`: a value is inserted literally, never read as $1 or $&. */
export function literalReplacement(value: unknown): string {
  return String(value).replace(/\$/g, "$$$$");
}
