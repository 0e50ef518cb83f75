// The configuration reference (docs/configuration.md), generated from the schema so the docs cannot drift from it.
// A developer tool (scripts/gen-docs.ts, `npm run docs`), kept out of agent/ so the bundle never carries the prose.
import * as z from "zod";
import { REAP_PER_RUN } from "../agent/actions/dns-reap";
import { formatBytes, limits } from "../agent/config/bounds";
import { documentShape } from "../agent/config/schema";

/** The subset of JSON Schema that z.toJSONSchema produces for bootlace's schema. */
interface JsonSchema {
  type?: string;
  const?: unknown;
  enum?: unknown[];
  default?: unknown;
  description?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  pattern?: string;
  anyOf?: JsonSchema[];
}

interface Row {
  path: string;
  type: string;
  default: string;
  description: string;
}

/** The whole Markdown reference. */
export function renderConfigReference(): string {
  const schema = z.toJSONSchema(documentShape, { io: "input", unrepresentable: "any" }) as JsonSchema;
  const rows = walk(schema, "");
  const sections = Object.keys(schema.properties ?? {}).filter((k) => !["version", "profile", "profiles"].includes(k));
  return [
    HEADER,
    SOURCES,
    MERGE,
    USER_DATA,
    SET_PATHS,
    ERRORS,
    LIMITS(),
    "## Reference\n",
    "Every key, its type, its default and what it does. `[]` stands for any item of a list, `<name>` for any key",
    "of a mapping. Keys not listed here are errors.\n",
    `\`profiles.<name>\` takes the same sections as the top level: ${sections.map((s) => `\`${s}\``).join(", ")}.\n`,
    "| key | type | default | description |",
    "| --- | --- | --- | --- |",
    ...rows.map((r) => `| \`${r.path}\` | ${cell(r.type)} | ${cell(r.default)} | ${cell(r.description)} |`),
    "",
    TEMPLATES,
    VALUES,
    ADDRESS_AND_TARGETS,
    DNS,
    PEERS_AND_FILES,
  ].join("\n");
}

function walk(schema: JsonSchema, prefix: string): Row[] {
  const rows: Row[] = [];
  for (const [key, child] of Object.entries(schema.properties ?? {})) {
    const path = prefix ? `${prefix}.${key}` : key;
    const required = schema.required?.includes(key) && child.default === undefined;
    rows.push({
      path,
      type: typeOf(child),
      default: child.default !== undefined ? `\`${JSON.stringify(child.default)}\`` : required ? "required" : "",
      description: child.description ?? "",
    });
    // Profiles repeat the top-level sections; listing them twice would only make the table longer.
    if (path === "profiles") continue;
    rows.push(...nested(child, path));
  }
  return rows;
}

function nested(schema: JsonSchema, path: string): Row[] {
  if (schema.type === "object" && schema.properties) return walk(schema, path);
  if (schema.type === "array" && schema.items?.type === "object") return walk(schema.items, `${path}[]`);
  const values = schema.additionalProperties;
  if (schema.type === "object" && typeof values === "object" && values.type === "object") {
    return walk(values, `${path}.<name>`);
  }
  return [];
}

function typeOf(s: JsonSchema): string {
  if (s.const !== undefined) return `\`${JSON.stringify(s.const)}\``;
  if (s.enum) return s.enum.map((v) => `\`${JSON.stringify(v)}\``).join(" or ");
  if (s.anyOf) return s.anyOf.map(typeOf).join(" or ");
  switch (s.type) {
    case "integer":
    case "number":
      return `${s.type}${range(s)}`;
    case "array":
      return `list of ${s.items ? plural(typeOf(s.items)) : "values"}${s.minItems ? ` (at least ${s.minItems})` : ""}`;
    case "object": {
      const values = s.additionalProperties;
      if (s.properties || typeof values !== "object") return "mapping";
      return `mapping of ${values.type === "object" && values.properties ? "name" : "string"} → ${typeOf(values)}`;
    }
    default:
      return s.type ?? "any";
  }
}

function range(s: JsonSchema): string {
  const bounded = (n: number | undefined) => n !== undefined && Math.abs(n) < 2 ** 31;
  if (bounded(s.minimum) && bounded(s.maximum)) return ` ${s.minimum}–${s.maximum}`;
  if (bounded(s.minimum)) return ` ≥ ${s.minimum}`;
  return "";
}

function plural(type: string): string {
  return type === "mapping" ? "mappings" : type.endsWith("g") || type.endsWith("r") ? `${type}s` : type;
}

/** Table-safe: `|` would end the cell and `<name>` would be taken for an HTML tag. */
function cell(text: string): string {
  return text.replace(/\|/g, "\\|").replace(/</g, "&lt;").replace(/\n/g, " ");
}

const HEADER = `# bootlace configuration

<!-- Generated from agent/config/schema.ts and scripts/config-docs.ts by \`npm run docs\`. Do not edit by hand. -->

bootlace reads one configuration document, assembled from several sources. This page says where it comes from, how
the sources combine, the forms user-data may take, and every key.
`;

const SOURCES = `## Where the configuration comes from

Later sources win, key by key:

1. **built-in defaults** (the *default* column below);
2. **baked files**: \`/etc/bootlace/bootlace.yaml\`, then \`/etc/bootlace/conf.d/*.yaml\` (and \`*.yml\`) in name order
   (byte order, as \`LC_ALL=C ls\`). Missing files are fine. AMI builders put profiles here, and user-data puts its
   own file here with cloud-init's \`write_files\` (see User-data). \`--config FILE\` reads FILE instead of all of
   them (relative to the working directory); \`--root DIR\` takes the baked paths under DIR;
3. **user-data**, in any of the forms below;
4. **flags**: \`--profile NAME\` and \`--set path=value\` (repeatable, applied in order).

**Profiles.** \`profile: NAME\` picks \`profiles.NAME\`. The name is the \`profile\` that wins among all sources
(\`--profile\` and \`BOOTLACE_PROFILE\` included), and \`profiles\` from every source are merged, so user-data can add
to a baked profile. The chosen profile is applied over the baked top level but **under** user-data and flags:

    effective = defaults ← baked top level ← profiles.NAME ← user-data top level ← user-data BOOTLACE_SET_ ← flags

so a key in user-data still overrides the same key in a baked profile. An unknown profile name is an error that says
where the name came from and which profiles exist.
`;

const MERGE = `## How sources merge

- **Mappings merge key by key, recursively**: a later source that sets \`dns.wait\` keeps an earlier \`dns.records\`.
- **Lists and scalars replace whole**: a later \`dns.records\` replaces the earlier list; items are not merged by
  position. To change one field of one item, use \`--set dns.records.0.ttl=30\` (see below).
- **\`null\` removes**: \`load_balancer: null\` (or \`load_balancer: ~\`) in user-data switches off a baked section; an
  empty \`--set path=\` does the same for one key.
- The merged document is validated once, so a rule that spans keys (\`elastic_ip\` needs exactly one of
  \`allocation_id\` or \`pool\`) applies to the result, and is reported against the later source.
`;

const USER_DATA = `## User-data

bootlace reads user-data (from IMDS, or \`--user-data FILE\`) in the forms below, each optionally gzip-compressed (a
MIME part too). Anything else means "no bootlace configuration in user-data", not an error. Examples of every form,
tested with cloud-init 22.4 and 25.1: [user-data.md](user-data.md).

**A cloud-config that writes bootlace's file** (recommended): cloud-init's own \`write_files\` puts a file into
\`/etc/bootlace/conf.d/\` (or \`/etc/bootlace/bootlace.yaml\`), where bootlace reads baked files; cloud-init writes
it before \`bootlace.service\` starts, and while it has not (no cloud-init, \`plan --user-data FILE\`), bootlace reads
the same file from the user-data. It is a baked file: it takes its place among them by name, under the chosen
profile. In a \`## template: jinja\` cloud-config, wrap bootlace's templates in \`{% raw %}…{% endraw %}\`.

\`\`\`yaml
#cloud-config
packages: [nginx]
write_files:
  - path: /etc/bootlace/conf.d/60-user-data.yaml
    content: |
      profile: web
      dns:
        records:
          - zone: example.internal
            name: "{{instance.id}}.example.internal"
\`\`\`

**A shell script** (first line \`#!\`): bootlace does not run it; it reads lines of the form

\`\`\`sh
#!/bin/bash
export BOOTLACE_PROFILE=web
BOOTLACE_SET_elastic_ip__pool__tags__Pool=root
BOOTLACE_SET_watch__interval='30'
\`\`\`

\`export\` is optional and single or double quotes are removed; a value that needs the shell to expand it (\`$VAR\`,
\`$(...)\`) is refused, since bootlace never runs the script. These lines sit above the baked files and the profile.

**MIME multipart**, as cloud-init writes it (\`cloud-init devel make-mime -a cc.yaml:cloud-config -a
boot.sh:x-shellscript\`), and \`#cloud-config-archive\`: each part is read by its type as above (\`text/cloud-config\`,
\`text/jinja2\`, \`text/x-shellscript\`). Parts of a generic type (\`text/plain\`, \`application/octet-stream\`,
\`application/x-gzip\`) are recognised by their first line. Nested multiparts are read too. Transfer encodings 7bit,
8bit, base64 and quoted-printable are understood. cloud-init keeps only the last cloud-config's \`write_files\`: a
bootlace file in an earlier list is reported.

**Older forms, still read; cloud-init warns about them** (since cloud-init 24.1 a warning makes \`cloud-init status\`
degraded): a \`#cloud-config\` with a top-level \`bootlace:\` key (refused by cloud-init 23.4 and later: "Additional
properties are not allowed"), a document whose first line is \`#bootlace\`, and a MIME part of type
\`text/x-bootlace\` ("Unhandled unknown content-type"). These sit above the baked files and the profile.

\`\`\`yaml
#cloud-config
packages: [nginx]
bootlace:
  profile: web
\`\`\`

**Credentials are refused.** User-data that carries bootlace configuration and also AWS credentials anywhere (an
access key id \`AKIA…\`/\`ASIA…\`, or \`aws_secret_access_key\`, \`aws_session_token\` and the like with a value, in any
part) is rejected: user-data is readable by any process on the instance. Give the instance an instance profile.
`;

const SET_PATHS = `## Paths in --set and BOOTLACE_SET_

A path names one key: mapping keys, and list indexes counted from 0.

| form | separator | example |
| --- | --- | --- |
| \`--set path=value\` | \`.\` (write \`\\.\` for a dot inside a key) | \`--set dns.records.0.ttl=30\` |
| \`BOOTLACE_SET_<path>=value\` | \`__\` (double underscore; keys contain single ones) | \`BOOTLACE_SET_dns__records__0__ttl=30\` |

- Values are read as YAML scalars: \`30\` is a number, \`true\` a boolean, \`web\` a string; an empty value removes the
  key.
- Case is kept: \`BOOTLACE_SET_elastic_ip__pool__tags__Pool=root\` sets the tag key \`Pool\`.
- Missing mappings are created; an index edits that item of the list in place (one past the end appends), so the rest
  of the item is kept.
- Shell variable names hold only letters, digits and \`_\`: keys with \`-\` or \`.\` (some profile names, tag keys)
  can only be set with \`--set\` or a document.
`;

const ERRORS = `## Errors

Nothing is changed when the configuration is wrong: bootlace lists every problem it found (exit 2), each with the
source, the line and the key path:

    user-data part 2 (text/x-bootlace, "bootlace.yaml"), line 7: dns.records.0.value: expected private_ipv4, public_ipv4, elastic_ip or an IPv4 address, got "10.0.0.300"
    /etc/bootlace/conf.d/10-web.yaml, line 3: dns.recrods: unknown key (expected one of: wait, owner_id, reverse, reap, records)
    --set watch.interval=1: watch.interval: expected number to be >=5, got 1

Lines in a MIME part count from the start of the part's decoded body; lines of a file written by \`write_files\` count
in the user-data when its content is a \`content: |\` block. \`bootlace validate FILE\` checks a configuration file or a
user-data file (any form cloud-init reads) offline, and says why user-data carries no bootlace configuration.
`;

/** The limits, from bounds.ts itself, so the numbers here are the ones bootlace checks. */
const LIMITS = (): string => `## Limits

bootlace reads its configuration as root at every boot, before anything else it does, so what it reads is bounded:
no input, however it is made, should keep a boot busy or grow the process past 200 MB (the tests hold every bound
below to that, with the real bundle). Each
limit is checked before the work it bounds (the size before the read, the nodes before the parse, the depth before
going deeper), and input over one is refused like any other mistake: exit 2, nothing changed, a message naming the
source (the user-data part, the file) and the limit:

    user-data part 1.1.1.1 (multipart/mixed): multipart nested more than ${limits.mimeDepth} deep (the limit); bootlace refuses input over its limits (docs/configuration.md, "Limits")

User-data that goes over a limit is refused whole, even when the part over it is not bootlace's: bootlace cannot
tell what it did not read.

| what | limit | why this number |
| --- | --- | --- |
| user-data as IMDS serves it (and \`--user-data FILE\`) | ${formatBytes(limits.userDataBytes)} | EC2's own limit (raw, before base64): RunInstances and ModifyInstanceAttribute refuse more, so no instance is ever given more. Over it, the data cannot have come from EC2. Compress it with gzip, or fetch the rest at boot. |
| a configuration file: \`bootlace.yaml\`, \`conf.d/*.yaml\`, \`--config\`, \`validate FILE\` | ${formatBytes(limits.configFileBytes)} | Checked by size before the file is read (something that is no regular file, a FIFO, is refused). Hundreds of times the examples in these docs, and small enough to read within the memory bound. |
| bytes gzip yields, over all of one user-data (every layer, part and \`write_files\` \`encoding: gzip\`) | ${formatBytes(limits.inflatedBytes)} | ${limits.inflatedBytes / limits.userDataBytes} times the 16 KiB EC2 allows: text compresses 3 to 10 times, so real user-data stays far below it, while a gzip bomb (16 KiB of gzip holds 16 MiB of spaces) stops here instead of in memory. |
| gzip inside gzip along one path | ${limits.gzipDepth} | A gzip'd user-data holding a gzip'd MIME part is a real pattern; a third layer is only ever a bomb. cloud-init itself undoes one layer at the top (gzip inside that is left alone, as it is by bootlace). |
| multipart inside multipart (a \`#cloud-config-archive\` counts as one) | ${limits.mimeDepth} | \`cloud-init devel make-mime\` writes 1; checked before going deeper, so the reader never recurses past it (before this limit, deep nesting ended in a stack overflow). |
| parts in one user-data, every multipart and archive together | ${limits.mimeParts} | Each part is read, decoded and parsed; real user-data has a handful. |
| YAML nodes (scalars, aliases, collections and their entries) in one document | ${limits.yamlNodes} | Counted by YAML's lexer, which holds nothing and stops at the limit, before the document is parsed: a parsed node costs about a kilobyte (262,144 list items took 283 MB). A large configuration has a few hundred. |
| YAML nodes over all the documents of one user-data | ${limits.yamlNodesPerUserData} | The same, for a user-data split into many parts. |
| YAML nesting (collections inside collections, aliases expanded) | ${limits.yamlDepth} | The YAML library composes documents recursively; thousands of levels overflowed its stack and aborted the process. bootlace's own keys are a few levels deep. |
| YAML aliases used in one document | ${limits.yamlAliases} | The YAML library's own default (\`maxAliasCount\`): a "billion laughs" document of a few hundred bytes expands to 10^10 nodes; it stops here. |
| \`{{ … }}\` expressions in one \`## template: jinja\` document | ${limits.jinjaExpressions} | Each becomes a placeholder in the rendered text; this bounds what rendering can add. |
| keys in one \`BOOTLACE_SET_\` path | ${limits.setPathSegments} | Deeper than any key bootlace has. |

Regular expressions are never built from input: a MIME boundary is matched as text. A \`BOOTLACE_SET_\` or
\`--set\` value over the YAML limits is taken as a string, unparsed.
`;

const TEMPLATES = `## Templates

Values described as templates are [Mustache](https://mustache.github.io/mustache.5.html) with HTML escaping off.
Variables: \`instance\` (\`id\`, \`region\`, \`az\`, \`private_ipv4\`, \`public_ipv4\`, \`elastic_ip\`, \`public_dns\`, \`mac\`,
\`vpc_id\`, \`subnet_id\`, \`hostname\`), \`tags\` (the instance's own), \`peers.<name>\` (a list of \`{id, ip, name, az, tags}\`
sorted by ip) and, in \`check\` and \`on_change\` (see [Commands](#commands)), \`path\` and, in \`check\`, \`staged\`.

\`public_dns\` is EC2's public DNS name of the public address (\`ec2-203-0-113-7.eu-west-1.compute.amazonaws.com\`;
\`…compute-1.amazonaws.com\` in us-east-1), which resolves to the private address from inside the VPC when the VPC has DNS
hostnames enabled. In \`files\`, \`elastic_ip\`, \`public_ipv4\` and \`public_dns\` are those of the Elastic IP claimed in this
run (a file that uses them waits for \`elastic_ip\`); elsewhere they are what IMDS reported at the start of the run.

**Every variable must exist.** \`validate\` (and \`plan\`, \`run\`, for a \`template:\` file, which is read then) refuses a
template that names a variable the view does not have, with exit 2, the key path and the variable:
\`{{instance.nope}}\`, \`{{peers.db.0.ipp}}\`, \`{{peers.nosuchset}}\` (a peer set that is not configured), \`{{nope}}\`,
inside sections too. Also refused: \`{{.}}\` (name the variable), a section over every tag (\`{{#tags}}\`; name one,
\`{{#tags.Env}}\`), partials, and an escaper that does not exist or is out of place (below). Names resolve as the
Mustache specification says: the first part on the section stack, the rest from there, so inside \`{{#peers.db}}\`,
\`{{tags.Zone}}\` is the peer's tag \`Zone\`, never this instance's. Which tags an instance has is known only when it
runs: in \`files\`, a \`{{tags.X}}\` this instance lacks fails that file (the action fails, exit 1, naming the tag and the
key path; nothing is written to it), and a peer that lacks it is left out of that file with a warning. A section on a
tag is a condition, not a use: \`{{#tags.Zone}}zone {{tags.Zone}}{{/tags.Zone}}\` is written only for whoever has the tag.
A known value that is empty (\`public_ipv4\` without a public address) renders empty. In record names and peer or pool
filters, a variable that renders empty is refused (exit 2, as before).
`;

const VALUES = `## What a value may be, where it lands

bootlace runs as root and writes what EC2 says into files. A value that did not come from the configuration (a tag, a
peer's name, anything read from IMDS or the EC2 API) never becomes code, a command, an extra line or field, or a
wildcard. Each variable has a kind, checked wherever it lands in a file:

| kind | variables | must be |
| --- | --- | --- |
| address | \`instance.private_ipv4\`, \`public_ipv4\`, \`elastic_ip\`; a peer's \`ip\` | an IPv4 or IPv6 address (or empty) |
| DNS name | \`instance.hostname\`, \`public_dns\`; a peer's \`name\` | letters, digits, \`-\`, \`_\` in dot-separated labels |
| id | \`instance.id\`, \`region\`, \`az\`, \`mac\`, \`vpc_id\`, \`subnet_id\`; a peer's \`id\`, \`az\` | letters, digits, \`.\`, \`_\`, \`:\`, \`-\` |
| free text | \`tags.X\`, this instance's or a peer's | the token alphabet, or any text inside an escaper |

**The token alphabet.** Free text outside an escaper is never empty (an empty value would drop a field from its
line), never starts with \`@\` or \`+\` (a file inclusion and a group in pg_hba.conf), and may carry any character
except: whitespace of any kind (\`\\s\`
and Unicode's separators \`\\p{Z}\`: space, tab, U+00A0, U+2028, U+2029, U+3000…), the quotes \`'\` \`"\` and
\`\` \` \`\`, backslash, \`$\`, \`#\`, \`;\`, \`,\`, \`<\`, \`>\`, \`|\`, \`&\`, \`(\`, \`)\`, \`{\`, \`}\`, and Unicode's "other"
characters \`\\p{C}\`: control characters (U+0000–U+001F, U+007F–U+009F, so CR, LF and U+0085 too), format characters
(zero-width, bidi controls, U+FEFF), private-use and unassigned code points, and lone surrogates (text that is not valid
UTF-16). Letters of any language, digits and \`. _ - : / = * ? [ ] ! ~ % ^\` pass, and \`@\` and \`+\` after the first
character. Such a value cannot end a line, start a comment, leave a quoted string or a shell word, add a field to a
whitespace-separated line or an entry to pg_hba.conf's comma lists. In a file named \`pg_hba.conf\`, free text is also
never one of its keywords (\`all\`, \`sameuser\`, \`samerole\`, \`samegroup\`, \`replication\`, \`samehost\`, \`samenet\`,
in any case), which would widen a rule to every database, user or host.

**Escapers.** For a free-text value that needs more (a password, a description), wrap the text where it lands in an
escaper, a section on the reserved top-level \`escape\`:

- \`{{#escape.php}}…{{/escape.php}}\`: each value inside is escaped for the inside of a PHP single-quoted string (\`\\\`
  becomes \`\\\\\`, \`'\` becomes \`\\'\`); the section's own text is written as it is:
  \`{{#escape.php}}define('DB_NAME', '{{tags.DbName}}');{{/escape.php}}\` with the tag \`x'); system('touch pwned'); //\`
  writes \`define('DB_NAME', 'x\\'); system(\\'touch pwned\\'); //');\`, a constant equal to the tag.
- \`{{#escape.shell}}…{{/escape.shell}}\`: the whole rendered section, its text and values, becomes one shell word
  (single-quoted, each \`'\` written \`'\\''\`): \`ExecStart=/usr/bin/app --name {{#escape.shell}}{{tags.Name}}{{/escape.shell}}\`.

Inside an escaper free text skips the token alphabet, but never carries a line break (LF, CR, VT, FF, U+0085, U+2028,
U+2029), a control or format character, a private-use or unassigned code point or a lone surrogate: files are read line
by line. Addresses, names and ids are checked for their kind inside escapers too. Escapers do not nest, are not
conditions (\`{{^escape.php}}\`), apply in \`files\` only (not in record names or filters), and an unknown one
(\`{{#escape.sql}}\`) is refused by \`validate\` with the key path.

**Names in /etc/hosts.** In \`/etc/hosts\` (and cloud-init's \`/etc/cloud/templates/hosts.*.tmpl\`) bootlace reads what it
rendered as hosts lines: on a line holding a value, the first field (up to a \`#\`) must be an IP address and every
other field holding a value must be a DNS name (no \`*\` label, not an address) that is not reserved. Reserved:
\`localhost\`, \`localhost.localdomain\`, \`localhost6\` and anything starting so, anything ending \`.localhost\`,
\`broadcasthost\`, \`ip6-localhost\`, \`ip6-loopback\`, \`ip6-localnet\`, \`ip6-mcastprefix\`, \`ip6-allnodes\`,
\`ip6-allrouters\`, \`ip6-allhosts\`, and this instance's own hostname (\`instance.hostname\`) and its first label in a
field made of a tag (this instance's own or a peer's) or on a line with a peer's value; this instance may still name
itself with its own facts (\`{{instance.private_ipv4}} {{instance.hostname}}\`). The template's own text is not held to these rules. In a
\`replace\`'s \`with\` on /etc/hosts, each field holding a value is an address or such a name.

**Who fails.** A peer whose value fails is left out of that file, with a warning naming the file, the instance, the tag
and why (\`/etc/hosts: left out peer i-0abc… (10.0.1.7) of peers.db: its tag Name "localhost" makes the /etc/hosts name
"localhost", which is a reserved name (files.0.block)\`), and the file is written for the others (an index such as
\`peers.db.0\` then names the next peer, checked in turn). This instance's own value failing leaves the file untouched and
fails the files action (exit 1), naming the tag, the value and the file (\`files.1 /var/www/app/Config.php: not touched:
this instance's tag DbName "x'); …" has a "'" (files.1.replace.0.with)\`); the other files are still written.

**Logs.** One log call is one line: in the text format every value in a message or a field that came from outside is
kept on its line (line breaks, control and format characters become \`\\n\`, \`\\u2028\`… escapes), and a field value is
JSON-quoted unless it is a plain token (\`A-Z a-z 0-9 . _ : / @ = + , -\`). The JSON format escapes them too, U+0085,
U+2028 and U+2029 included.
`;

const ADDRESS_AND_TARGETS = `## Elastic IP and target groups

**Elastic IP.** With \`allocation_id\`, that address; with \`pool\`, any address carrying every tag of the pool. Only
addresses associated with nothing are candidates, each instance trying them in an order of its own (by a hash of its
instance id and the allocation id, so instances booting together start at different addresses), with
\`AllowReassociation=false\`: an association that goes through is this instance's. When another instance won the
address first (\`Resource.AlreadyAssociated\`), bootlace reads the pool again and goes on with what is free now, in its
own order; it also reads it again before claiming when the first read is more than 3 s old (a run claims only once
every action has planned, which under API throttling can take minutes). With no free address, an address held by an
instance that is leaving (stopping, shutting down, or not InService in this instance's Auto Scaling group) is waited
for up to \`handoff\` seconds and then claimed ([autoscaling.md](autoscaling.md)); otherwise the action fails (exit 1),
naming the pool, and nothing is taken from anyone. \`allow_reassociation: true\` is the only way to take an address an
instance in service holds (free ones still come first in a pool); the log names the instance it was taken from.
An address already associated here changes nothing. It goes to the primary private IPv4 of the primary interface, or
\`private_ip\`, which must be one of that interface's addresses. Records with \`value: elastic_ip\` or \`public_ipv4\` wait
for the claim and get the new address; the result shows the address and its public DNS name (\`instance.public_dns\`).
\`bootlace stop\` leaves the address associated: an Elastic IP stays allocated to the account when its instance stops or
terminates, and disassociating it at shutdown would only leave a window with no address (AWS disassociates it when the
instance terminates; a replacement instance claims it from the pool or with \`allow_reassociation\`).

**Target groups.** By \`arn\` or \`name\`; the target is the instance id for a group of target type \`instance\` and the
primary private IPv4 for type \`ip\` (with \`AvailabilityZone=all\` when the group is in another VPC), on \`port\` or the
group's port. bootlace registers only a target that is not registered yet, then, with \`wait_healthy\` > 0, polls its
health — first within a second, then less and less often, at most every 20 s (a fleet's instances share ELBv2's
account-wide limit on Describe calls) — logging the state and reason as they change, until it is \`healthy\`. Still not healthy
after \`wait_healthy\` seconds fails the action with the last state and reason; a state waiting cannot change
(\`unused\` because the group has no load balancer in that zone, or the instance is stopped) fails at once. \`bootlace stop\`
deregisters (with \`deregister_on_shutdown\`) and waits while the target is \`draining\`, at most the group's
\`deregistration_delay.timeout_seconds\` and never past \`--deadline\`; after that the load balancer finishes on its own.

**Permissions.** \`bootlace iam-policy\` prints the IAM policy the effective configuration needs (read as \`validate\`
reads it: baked files, \`--config\`, \`--user-data\`, \`--profile\`, \`--set\`; no IMDS, no AWS call): \`ec2:DescribeAddresses\`
and \`ec2:AssociateAddress\` (scoped to the allocation id, or to the pool's tags); \`elasticloadbalancing:DescribeTargetGroups\`,
\`DescribeTargetHealth\`, \`RegisterTargets\` on the configured groups, and \`DeregisterTargets\` with
\`DescribeTargetGroupAttributes\` when stop deregisters; the Route 53 reads and \`ChangeResourceRecordSets\` on the zones,
limited by condition to the configured record names, types and change actions, and \`GetChange\` unless \`wait: none\`.
`;

const DNS = `## DNS

**Records and ownership.** Each record is an A or AAAA record set in the zone given by \`zone\` (with \`private\` when a
public and a private zone share the name) or \`zone_id\`. Beside it bootlace keeps an ownership TXT record,
\`_bootlace-a.NAME\` (\`_bootlace-aaaa.\`, \`_bootlace-ptr.\`; \`_bootlace-a-wildcard.ZONE\` for \`*.ZONE\`), holding
\`heritage=bootlace,bootlace/owner=OWNER_ID,bootlace/instance=i-…\`. A record that exists without this owner's
ownership record is left alone and fails the run (exit 1, naming it), unless \`takeover: true\`; an alias is never
touched. Changes are CREATE for what was absent and UPSERT for what bootlace owns, so a record someone creates between
the read and the write makes Route 53 refuse the batch; bootlace then reads again, once. With \`wait: insync\` the run
waits until Route 53 reports the change INSYNC. \`bootlace stop\` deletes the records marked \`delete_on_shutdown\` that
still hold this instance's value, exactly as read (a record changed since is left).

**Shared names.** Many instances behind one name need one record set each: \`set_identifier\` (usually
\`"{{instance.id}}"\`) with one routing policy, \`multivalue: true\` (Route 53 answers with up to eight healthy
addresses), \`weight\` (0–255) or \`failover\` (\`PRIMARY\` or \`SECONDARY\`, one of each per name), and optionally a
\`health_check_id\`. Each instance writes only its own record set, and its own ownership record,
\`SET._bootlace-a.NAME\`, so instances booting together never rewrite one shared record (no read-modify-write to race)
and each stop removes only its own. The identifier also names that ownership record, so it must render to one label:
1–63 lower-case letters, digits, \`-\` or \`_\` (a tag value that does not is refused, naming the key). A simple record
of the same owner under the name gives way in the same batch; anything else already there (a simple record not
bootlace's, records of another routing policy, a second PRIMARY) is left alone and fails the run, naming it.

    dns:
      records:
        - zone: example.internal
          name: api.example.internal
          set_identifier: "{{instance.id}}"
          multivalue: true
          delete_on_shutdown: true
        - zone: example.internal          # a canary image's instances each take a small share
          name: www.example.internal
          set_identifier: "{{instance.id}}"
          weight: 10                      # the stable image's profile says 90

A failover pair names its roles itself, for example with two profiles baked into the image and \`BOOTLACE_PROFILE\`
in each instance's user-data:

    profiles:
      db-primary:
        dns:
          records:
            - { zone: example.internal, name: db.example.internal, set_identifier: primary, failover: PRIMARY,
                health_check_id: 8f3a5b2c-1d4e-4f60-9a7b-0c1d2e3f4a5b }
      db-secondary:
        dns:
          records:
            - { zone: example.internal, name: db.example.internal, set_identifier: secondary, failover: SECONDARY }

**Reverse records.** With \`dns.reverse: true\` (or \`reverse: true\` on one record) bootlace also keeps the PTR record
of each A and AAAA record's address, in the private reverse zone (\`in-addr.arpa\`, or \`ip6.arpa\` by nibbles) associated
with the instance's VPC whose name is the longest match, found with \`ListHostedZonesByVPC\`. The PTR lists every name
of this instance with that address, and is owned like a forward record (\`_bootlace-ptr.…\`); a PTR that is not
bootlace's is never overwritten (the run fails, naming it, and the forward records are still written). Where the
forward and reverse records share a zone they go in one batch. When the address changes (another Elastic IP, a
literal changed), the next run writes the new PTR and deletes the old one if its ownership still names this instance;
\`bootlace stop\` deletes the PTR with the records marked \`delete_on_shutdown\`. No reverse zone for an address is a
configuration error (exit 2, nothing changed). A host allowed by name in pg_hba.conf then resolves both ways.

    dns:
      reverse: true
      records:
        - zone: example.internal
          name: "{{instance.id}}.example.internal"
          delete_on_shutdown: true
        - zone: example.internal
          name: "{{instance.id}}.example.internal"
          type: AAAA
          value: ipv6              # the primary interface's first IPv6 address (IMDS ipv6s)

\`value: ipv6\` on an instance without an IPv6 address is a configuration error naming the record.

**Reaping.** An instance that dies without its stop path (spot reclaim, forced termination, a stop without OS
shutdown) leaves its records behind, pointing at an address another instance may get. With \`dns.reap: true\`, each run
looks at the ownership records under the names it reads anyway (its own names, the shared names, its PTR names): a
record set whose ownership record says this \`owner_id\` and an instance that is not running or pending
(\`ec2:DescribeInstances\`; terminated, shutting down, stopping, stopped, or no longer known to EC2) is deleted together
with its ownership record, with an exact DELETE of what was read, so a change made meanwhile wins. At most
${REAP_PER_RUN} record sets per run; each is logged and shown as a \`reap\` change. A record without bootlace's
ownership record, or of another \`owner_id\`, is never reaped. A stopped owner's records come back at its next boot.

**Calls.** Each zone is looked up once (\`ListHostedZonesByName\`, or \`GetHostedZone\` for \`zone_id\`;
\`ListHostedZonesByVPC\` for the reverse zones) and remembered in \`state.json\`, so a later boot of the instance does
not look again (a zone deleted since is looked up afresh). Each name is read with one \`ListResourceRecordSets\` page
that holds its record sets and the ownership records beside them (more pages only for a name shared by more than 150
instances). All of the instance's changes to a zone go in one \`ChangeResourceRecordSets\` batch. \`GetChange\` is polled
about once a second at first, then ever more sparsely up to every 15 s, with jitter so a fleet does not poll in step.

| run | Route 53 calls (one record, zone by name) |
| --- | --- |
| first boot | \`ListHostedZonesByName\` 1, \`ListResourceRecordSets\` 1, \`ChangeResourceRecordSets\` 1, \`GetChange\` 1 or more (about 1 per second of waiting for the first 5 s) |
| later boot, nothing to change | \`ListResourceRecordSets\` 1 |

\`dns.reverse\` adds \`ListHostedZonesByVPC\` 1 (first boot only) and, per reverse zone, one listing per PTR name and one
batch; \`dns.reap\` adds \`ec2:DescribeInstances\` 1 when another instance's records are under the names read.

**Permissions.** \`bootlace iam-policy\` adds, for shared names, their ownership records (\`*._bootlace-a.NAME\`) and
\`DELETE\`; for reverse records, \`route53:ListHostedZonesByVPC\` with \`ec2:DescribeVpcs\`, changes to PTR names under
\`in-addr.arpa\` or \`ip6.arpa\` in any zone, and \`DELETE\`; for the reaper, \`ec2:DescribeInstances\` and \`DELETE\`.
`;

const PEERS_AND_FILES = `## Peers and files

**Peers.** \`peers.<name>\` lists the running instances in this instance's VPC that carry every tag of the set. Values
may be templates (\`Env: "{{tags.Env}}"\`, so a staging app never finds the production database); a value rendered
from a variable matches literally, while \`*\` and \`?\` written in the configuration are wildcards. This instance is
never in the list, nor an instance without a private IPv4 address. Each peer is \`{id, ip, name, az, tags}\`, where
\`name\` is its \`Name\` tag (EC2's private DNS name without one); the list is sorted by address. The instance's own tags
come from IMDS when instance metadata tags are enabled, else from \`ec2:DescribeInstances\` on itself.

\`min\` and \`timeout\`: \`bootlace run\` waits, polling every 2 to 15 s with jitter, until each set has at least \`min\`
peers, for at most \`timeout\` seconds (never past \`--deadline\`). A set still short then leaves every file that uses it
untouched, and the run exits 1 naming the set. \`bootlace plan\` does not wait; \`bootlace watch\` never waits either:
a short set leaves its files alone until a later pass finds enough.

**Files.** Each entry is one file, and says what it holds in one of three ways.

- \`block\`: the lines between two marker lines, which name bootlace and the block (\`comment\` and \`name\` change
  \`#\` and \`main\`):

      # BEGIN bootlace block main (managed by bootlace: edits inside are overwritten)
      10.0.1.7 db.internal
      # END bootlace block main

  The rest of the file is kept byte for byte, and its line endings (LF or CRLF) are used for the block. A new block
  goes at \`position\` (the bottom by default); an existing block is replaced where it is. Damaged markers (one
  missing, or twice) are not guessed at: the file is left alone and the run fails. A block removed from the
  configuration, or renamed, is removed from its file at the next run (\`state.json\` remembers the blocks bootlace
  wrote); to remove the last entry, leave \`files: []\`.
- \`replace\`: each \`match\`, a JavaScript regular expression, is applied to every line (without its line ending), and
  every occurrence is replaced by the rendered \`with\`, where \`$1\` and \`$&\` refer to the match and values from
  variables are inserted literally. An edit that matches no line is reported and fails the run; the edits that
  matched are still written. Write \`match\` so that it also matches what \`with\` produces, and a second run changes
  nothing. The file must exist.
- \`template\`: the whole file is the rendered template (a file under \`--root\`).

**What lands in a file is checked.** Each value for its kind, free text against the token alphabet unless an
escaper takes it, names in /etc/hosts against the reserved ones: see [What a value may be](#what-a-value-may-be-where-it-lands).
A peer whose values fail is left out of that file with a warning naming the instance and the tag, and the file is still
written for the others; this instance's own failing value leaves the file untouched and fails the run. What a command
receives is said under [Commands](#commands): never a value in a shell's text.

**Writing.** A file is written only when its content changes: a second run touches nothing (same inode, same mtime).
The new content is staged in a temporary file beside the file, with the file's owner, group and mode (kept from the
existing file unless \`owner\`, \`group\` or \`mode\` say otherwise; 0644 for a new file), and fsync'd; then \`check\`
runs on it, and a failing check leaves the real file untouched and fails the run. Then the previous content is kept as
\`PATH.bootlace-bak\` (with \`backup\`), the staged file is renamed over the file, and the directory is fsync'd: whenever
bootlace is stopped, even by SIGKILL or a power cut, the file is the old one or the new one, never a mix, never
missing. A symbolic link is refused unless \`follow_symlinks: true\`, which writes its target and keeps the link. A file
bind-mounted on its own (rename fails with EBUSY or EXDEV, as with /etc/hosts in containers) is refused rather than
written in place, since an in-place write can be torn by a crash: mount its directory instead, or manage the file
where it comes from. A file whose directory does not exist is not created.

**Reloads.** After all files are written, the \`on_change\` command of each file whose content changed runs, once
even when several files name it (the same command once rendered; its environment is that of the first such file), in
the \`--root\` folder; a failing command fails the run.

**At the deadline.** \`check\` and \`on_change\` run in a process group of their own; at \`--deadline\` the whole group
gets SIGTERM, and SIGKILL 2 s later: a check cut off this way leaves the real file untouched and fails the run. The
\`replace\` edits of a file run in a worker thread that is stopped at the deadline, so a pattern that backtracks
without end on some line (\`(a+)+$\` on a long run of \`a\`) leaves that file untouched and fails the run with the
pattern's key path (\`files.N.replace.M.match\`); the other files are still written.

### Commands

\`check\` and \`on_change\` take one of two forms. A value from a tag, a peer or IMDS never becomes part of a shell's
text: in the first form it is one argument whatever it holds, in the second it is an environment variable.

- **A list** (argv) is run without a shell: \`check: ["php", "-l", "{{staged}}"]\`. Each element is a template rendered
  with every variable (\`instance\`, \`tags\`, \`peers\`, \`path\`, \`staged\`) into exactly one argument, spaces,
  quotes, \`$(…)\` and \`;\` included. The first element, the program, is written literally: a template tag in it is
  refused (a value may not choose what runs). A program without a \`/\` is looked up in \`PATH\`; one that is not
  there fails the file with "not found". An element that would hold a NUL character once rendered (no argument can)
  leaves the file untouched, naming the value and the key path (\`files.N.check.M\`).
- **A string** is run by \`/bin/sh -c\`: \`on_change: systemctl reload php-fpm\`. It may use only bootlace's own
  \`{{path}}\` and, in \`check\`, \`{{staged}}\`, each replaced by one shell-quoted word. Any other variable
  (\`{{tags.X}}\`, \`{{instance.id}}\`, \`{{#peers.db}}\`…), and \`{{{staged}}}\`, is refused by \`validate\`, \`plan\` and
  \`run\` (exit 2, nothing changed), naming the key path and the variable: use the list form, or the variable's
  environment variable, double-quoted (\`"$BOOTLACE_TAG_X"\`).

\`{{path}}\` is the file as this host sees it (under \`--root\`; links followed), \`{{staged}}\` the staged copy beside
it. Both forms run in the \`--root\` folder, in a process group of their own, with this environment and nothing else:

| variable | value |
| --- | --- |
| \`PATH\` | bootlace's own, else \`/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\` |
| \`HOME\`, \`LANG\`, \`LANGUAGE\`, \`LC_ALL\`, \`LC_CTYPE\`, \`TZ\` | bootlace's own, when set |
| \`BOOTLACE_PATH\` | \`{{path}}\` |
| \`BOOTLACE_STAGED\` | \`{{staged}}\` (\`check\` only) |
| \`BOOTLACE_INSTANCE_ID\`, \`BOOTLACE_REGION\`, \`BOOTLACE_AZ\`, \`BOOTLACE_PRIVATE_IPV4\`, \`BOOTLACE_PUBLIC_IPV4\`, \`BOOTLACE_ELASTIC_IP\`, \`BOOTLACE_PUBLIC_DNS\`, \`BOOTLACE_MAC\`, \`BOOTLACE_HOSTNAME\`, \`BOOTLACE_VPC_ID\`, \`BOOTLACE_SUBNET_ID\` | \`instance.id\`, \`instance.region\`… as templates see them; empty when the instance has none (no public address) |
| \`BOOTLACE_TAG_<KEY>\` | each of this instance's tags; \`<KEY>\` is the key in upper case with every character but \`A-Z\`, \`0-9\` and \`_\` as \`_\` (\`aws:autoscaling:groupName\` → \`BOOTLACE_TAG_AWS_AUTOSCALING_GROUPNAME\`) |
| \`BOOTLACE_PEERS_<SET>\` | the addresses of the set's peers, space-separated (\`10.0.1.7 10.0.1.9\`); set names are lower-case identifiers, so \`peers.db\` → \`BOOTLACE_PEERS_DB\` |

Nothing else of bootlace's environment is passed on: no \`AWS_*\` (credentials, endpoints), no \`NOTIFY_SOCKET\`, no
\`NODE_OPTIONS\`. Left out, each with a warning: tags whose keys map to one name (\`a-b\` and \`A.B\`: neither is set),
a value holding a NUL character, and a peer address that is not IPv4 (the others are kept). When this instance's tags
cannot be read (IMDS does not expose them and \`ec2:DescribeInstances\` is not allowed: \`bootlace iam-policy\` allows it
for a configuration with commands) and no template needs them, the commands run without \`BOOTLACE_TAG_*\`, with a
warning. A command that names \`BOOTLACE_ELASTIC_IP\`, \`BOOTLACE_PUBLIC_IPV4\` or \`BOOTLACE_PUBLIC_DNS\` in its text
sees the Elastic IP claimed in this run (its file waits for \`elastic_ip\`, as a template naming them does), and in a
warm pool a file whose command names those or \`BOOTLACE_PEERS_\` waits for InService. A script called by a command is
not looked into: it sees the addresses as they were at the start of the run, and the peers found.

**/etc/hosts and cloud-init.** When cloud-init's \`manage_etc_hosts\` is \`true\` (or \`template\`) in
\`/etc/cloud/cloud.cfg\`, \`/etc/cloud/cloud.cfg.d/*.cfg\` or the instance's cloud-config user-data, cloud-init rewrites
/etc/hosts from \`/etc/cloud/templates/hosts.<os family>.tmpl\` at every boot, and bootlace's block is gone until
bootlace runs again. bootlace warns when it sees this. Either manage the template too (a second files entry with the
same block, for the template file), or set \`manage_etc_hosts: localhost\`, which only keeps the instance's own line.
With cloud-init's own Debian template, as both 22.4 and 25.1 ship it (a test edits a copy of it so and renders it
with cloud-init's templater: the block comes through as written):

\`\`\`yaml
peers:
  db: { tags: { Role: db, Env: "{{tags.Env}}" } }
files:
  - path: /etc/hosts
    block: "{{#peers.db}}{{ip}} db.internal\\n{{/peers.db}}"
  - path: /etc/cloud/templates/hosts.debian.tmpl # cloud-init renders /etc/hosts from it at every boot
    block: "{{#peers.db}}{{ip}} db.internal\\n{{/peers.db}}"
\`\`\`

**watch.** \`bootlace watch\` keeps running: every \`watch.interval\` seconds (±20 %, so a fleet does not poll in step)
it discovers the peers again and rewrites only the files whose content changed, running each \`on_change\` once per
pass. SIGHUP reads the configuration and the instance metadata again (a configuration that is refused leaves the
previous one in force); SIGTERM or SIGINT stop it after the pass under way. Each pass takes the run lock, so it never
interleaves with \`bootlace run\`, and has \`--deadline\` seconds.
`;
