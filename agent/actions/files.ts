// Files: each configured file (a marked block, regex line edits, or a whole template) rendered with the instance's
// and its peers' values, with every value checked before it lands, then written by the one writer; on_change
// commands run once each after all files are written. Commands never carry a value in a shell's text: see
// template/command.ts (what a command may use, its rendering) and files/command-env.ts (values as BOOTLACE_* variables).
import type { Stats } from "node:fs";
import { dirname } from "node:path";
import Mustache from "mustache";
import { formatBytes, limits } from "../config/bounds";
import type { Config, FileConfig } from "../config/schema";
import { allOrConfigErrors, ConfigError, ConfigErrors, describeCause } from "../core/errors";
import { jsonQuoted, quoted } from "../core/log";
import { etcHostsAdvice } from "../files/cloud-init";
import { commandEnv } from "../files/command-env";
import { describeResult, runCommand } from "../files/commands";
import type { BlockId, EditResult } from "../files/edit";
import { applyBlock, lineChanges, removeBlock } from "../files/edit";
import { applyReplaceStoppable, ReplaceStoppedError } from "../files/replace-worker";
import { resolveId } from "../files/owners";
import { describeUse, hostsProblems, isHostsFile, isPgHbaFile, literalReplacement, useProblem } from "../files/values";
import { describeInstancesStatement } from "../instance/tags";
import type { Resolved } from "../root/fs";
import { CheckFailedError, WriteRefusedError } from "../root/write";
import type { FieldUse } from "../template/analysis";
import type { CommandSpec } from "../template/command";
import { commandMentions, renderCommand } from "../template/command";
import { fieldUse, inlineTemplates, templateProblems } from "../template/analysis";
import type { Origin } from "../template/engine";
import { renderValues } from "../template/engine";
import type { PeerView, TemplateView } from "../template/render";
import { mentionsElasticIp, templateView } from "../template/render";
import type { PeersOutput, PeerSetResult } from "./peers";
import { describeSet } from "./peers";
import type { Action, ActionContext, Change, ElasticIpOutput, Outcome, Plan } from "./types";

/** A block bootlace manages, saved in state.json so a block dropped from the configuration is removed from its file. */
export interface ManagedBlock extends BlockId {
  path: string;
}

export interface FilesSaved {
  blocks: ManagedBlock[];
}

interface FilePlan {
  /** "files.2", or "files (removed)" for a file only the previous run's state names. */
  at: string;
  path: string;
  /** The file written, as the instance names it: symbolic links followed (when allowed), every hop inside --root. */
  target: string;
  /** The new content, when it differs. */
  after?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  change?: Change;
  /** Why the file is not touched at all (reported as a failure). */
  problem?: string;
  /** Replace edits that matched nothing (reported as failures; the other edits are still written). */
  unmatched: string[];
  /** The file as the host sees it (under --root): {{path}} and BOOTLACE_PATH. */
  hostPath: string;
  check?: { command: CommandSpec; view: TemplateView; env: EnvValues };
  /** Rendered at plan time: a value that cannot be an argument leaves the file untouched rather than unreloaded. */
  onChange?: { argv: string[]; env: EnvValues };
  backup: boolean;
  /** The blocks this file holds once written (for the state). */
  blocks: ManagedBlock[];
}

export interface FilesPlanData {
  files: FilePlan[];
  /** Peer sets short after the wait that no file uses: reported here, since the peers action leaves that to us. */
  shortSets: string[];
}

// ---- reading -------------------------------------------------------------------------------------------------------

/** Warnings said once per configuration: plan and apply, and every pass of `watch`, would repeat them otherwise. */
const warned = new WeakMap<Config, Set<string>>();

function warnOnce(ctx: ActionContext, message: string): void {
  const seen = warned.get(ctx.config) ?? new Set<string>();
  warned.set(ctx.config, seen);
  if (seen.has(message)) return;
  seen.add(message);
  ctx.log.warn(message);
}

interface Sources {
  /** The whole-file template's text (template mode). */
  text?: string;
  /** What the file's templates and its commands use: which peer sets it waits for, whether it needs the tags. */
  use: FieldUse;
}

/** Reads a file's template (template mode) and works out which values its templates use. */
async function readSources(ctx: ActionContext, f: FileConfig, at: string): Promise<Sources> {
  let text: string | undefined;
  if (f.template !== undefined) {
    const refuse = (why: string) => new ConfigError(`cannot use ${f.template}: ${why}`, undefined, `${at}.template`);
    let bytes: Buffer | undefined;
    try {
      // Checked by size before it is read, as the configuration files are (config/bounds.ts).
      const size = (await ctx.fs.stat(f.template))?.size ?? 0;
      if (size > limits.configFileBytes) {
        throw new Error(
          `${formatBytes(size)}, over the limit of ${formatBytes(limits.configFileBytes)} for a template`,
        );
      }
      bytes = await ctx.fs.readBytes(f.template);
    } catch (error) {
      throw refuse(describeCause(error));
    }
    if (bytes === undefined) throw refuse("ENOENT: no such file");
    // Decoded strictly: bytes that are not UTF-8 would land in the file as U+FFFD.
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      throw refuse("it is not UTF-8 text");
    }
    try {
      Mustache.parse(text);
    } catch (error) {
      throw refuse(`not a valid template: ${describeCause(error)}`);
    }
  }
  // The configuration's own templates were checked at validate; a template file is read only now.
  if (text !== undefined) {
    const scope = { peerSets: Object.keys(ctx.config.peers ?? {}), escapers: true };
    const problems = templateProblems(text, scope);
    if (problems.length > 0) {
      throw new ConfigErrors(problems.map((p) => new ConfigError(`${f.template}: ${p}`, undefined, `${at}.template`)));
    }
  }
  const use = fieldUse([text ?? "", ...inlineTemplates(f)]);
  return { ...(text !== undefined && { text }), use };
}

async function resolveOwnership(ctx: ActionContext, f: FileConfig, at: string) {
  const [uid, gid] = await Promise.all([
    f.owner === undefined ? undefined : resolveId(ctx.fs, "user", f.owner),
    f.group === undefined ? undefined : resolveId(ctx.fs, "group", f.group),
  ]);
  const problems: ConfigError[] = [];
  if (f.owner !== undefined && uid === undefined) {
    problems.push(new ConfigError(`no user named ${f.owner} in /etc/passwd`, undefined, `${at}.owner`));
  }
  if (f.group !== undefined && gid === undefined) {
    problems.push(new ConfigError(`no group named ${f.group} in /etc/group`, undefined, `${at}.group`));
  }
  if (problems.length > 0) throw new ConfigErrors(problems);
  return {
    ...(uid !== undefined && { uid }),
    ...(gid !== undefined && { gid }),
    ...(f.mode !== undefined && { mode: parseInt(f.mode, 8) }),
  };
}

/** The current text; undefined when absent; a problem when it is not text bootlace can keep byte for byte. */
async function readCurrent(ctx: ActionContext, file: Resolved): Promise<{ text?: string; problem?: string }> {
  const bytes = file.stat ? await ctx.fs.readBytes(file.path) : undefined;
  if (bytes === undefined) {
    const dir = await ctx.fs.stat(dirname(file.path));
    return dir?.isDirectory() ? {} : { problem: `its directory ${dirname(file.real)} does not exist` };
  }
  const text = bytes.toString("utf8");
  if (!Buffer.from(text, "utf8").equals(bytes)) {
    return { problem: "it is not UTF-8 text, so bootlace could not keep the rest of it byte for byte" };
  }
  return { text };
}

// ---- deciding --------------------------------------------------------------------------------------------------------

interface FileEnv {
  sets: Record<string, PeerSetResult>;
  tags: Record<string, string>;
  /** The tags commands see as BOOTLACE_TAG_*; undefined when they could not be read. */
  commandTags: Record<string, string> | undefined;
  /** Blocks the previous run managed in this file that the configuration no longer has. */
  stale: ManagedBlock[];
}

/** Peer sets a file uses that ended (or, in a plan, stand) below their min. */
function shortSets(use: FieldUse, sets: Record<string, PeerSetResult>): [string, PeerSetResult][] {
  const used = use.allPeerSets ? Object.keys(sets) : [...use.peerSets];
  return used.flatMap((name) => {
    const r = sets[name];
    return r && r.status !== "ok" ? [[name, r] as [string, PeerSetResult]] : [];
  });
}

function withoutStale(text: string, stale: ManagedBlock[]): EditResult {
  let result: EditResult = { ok: true, content: text };
  for (const b of stale) if (result.ok) result = removeBlock(result.content, b);
  return result;
}

/** A file's templates rendered: the block's body, each replace's `with`, or the whole file. */
interface RenderedFile {
  body?: string;
  withs?: string[];
  text?: string;
}

/** A value that may not land, and whose it is: this instance's fails the file, a peer's leaves that peer out. */
interface ValueProblem {
  origin: Origin;
  /** After "this instance's"/"its" (a value), "this instance"/"it" (a value it lacks), or alone (the template's text). */
  message: string;
  subject: "value" | "lacks" | "none";
}

/** A problem as said about this instance, or about a peer ("its …", after the peer is named). */
function say(p: ValueProblem, peer: boolean): string {
  if (p.subject === "none") return p.message;
  if (p.subject === "lacks") return `${peer ? "it" : "this instance"} ${p.message}`;
  return `${peer ? "its" : "this instance's"} ${p.message}`;
}

/**
 * Renders the file's templates with every value checked where it lands: its kind, the token alphabet for free text
 * outside an escaper, a tag the template uses and the instance or peer lacks, and the names of /etc/hosts lines.
 */
function renderFile(
  f: FileConfig,
  at: string,
  sources: Sources,
  view: TemplateView,
): {
  rendered: RenderedFile;
  problems: ValueProblem[];
} {
  const problems: ValueProblem[] = [];
  const hosts = isHostsFile(f.path);
  const pgHba = isPgHbaFile(f.path);
  const own = view.instance.hostname || undefined;
  const one = (template: string, keyPath: string, mode: "lines" | "fragment", literal?: (t: string) => string) => {
    const result = renderValues(template, view, {
      check: (use) => {
        const problem = useProblem(use, { pgHba });
        if (problem) {
          problems.push({
            origin: use.origin,
            message: `${describeUse(use)} ${problem} (${keyPath})`,
            subject: "value",
          });
        }
      },
      ...(literal && { literal }),
    });
    for (const m of result.missing) {
      // This instance's tags are listed, so a misspelt key is seen at once.
      const theirs = m.origin.of === "instance" && m.what.startsWith("tag ");
      const tags = theirs ? `; its tags: ${Object.keys(view.tags).join(", ") || "none"}` : "";
      const message = `has no ${m.what}, which ${keyPath} uses ({{${m.name}}})${tags}`;
      problems.push({ origin: m.origin, message, subject: "lacks" });
    }
    if (hosts) {
      for (const h of hostsProblems(result, own, mode)) {
        const what = `makes the ${f.path} ${mode === "lines" && h.problem === "is not an address" ? "address" : "name"}`;
        const message = `${what} ${jsonQuoted(h.field)}, which ${h.problem} (${keyPath})`;
        if (h.culprits.length === 0) {
          problems.push({ origin: { of: "instance" }, message: `the template's text ${message}`, subject: "none" });
        }
        for (const u of h.culprits) {
          problems.push({ origin: u.origin, message: `${describeUse(u)} ${message}`, subject: "value" });
        }
      }
    }
    return result.text;
  };
  let rendered: RenderedFile;
  if (f.block !== undefined) rendered = { body: one(f.block, `${at}.block`, "lines") };
  else if (f.replace !== undefined) {
    rendered = {
      withs: f.replace.map((r, i) => one(r.with, `${at}.replace.${i}.with`, "fragment", literalReplacement)),
    };
  } else rendered = { text: one(sources.text ?? "", `${at}.template`, "lines") };
  return { rendered, problems };
}

/** The peers left out of a file, and why. */
interface ExcludedPeer {
  set: string;
  peer: PeerView;
  problems: string[];
}

/**
 * Renders until no peer's value fails: a failing peer is left out and the rest rendered again (an index such as
 * peers.db.0 then names the next one, checked in turn). This instance's failing value fails the file.
 */
function renderSafely(
  ctx: ActionContext,
  f: FileConfig,
  at: string,
  sources: Sources,
  env: FileEnv,
): { rendered: RenderedFile; view: TemplateView; excluded: ExcludedPeer[] } | { problem: string } {
  let sets: Record<string, PeerView[]> = Object.fromEntries(Object.entries(env.sets).map(([n, r]) => [n, r.peers]));
  const excluded: ExcludedPeer[] = [];
  for (;;) {
    const view = templateView(ctx.instance, env.tags, sets, ctx.upstream.elastic_ip as ElasticIpOutput);
    const { rendered, problems } = renderFile(f, at, sources, view);
    const own = [...new Set(problems.filter((p) => p.origin.of === "instance").map((p) => say(p, false)))];
    if (own.length > 0) return { problem: `not touched: ${own.join("; ")}` };
    const byPeer = new Map<PeerView, ExcludedPeer>();
    for (const p of problems) {
      if (p.origin.of !== "peer") continue;
      const entry = byPeer.get(p.origin.peer) ?? { set: p.origin.set, peer: p.origin.peer, problems: [] };
      if (!entry.problems.includes(say(p, true))) entry.problems.push(say(p, true));
      byPeer.set(p.origin.peer, entry);
    }
    if (byPeer.size === 0) return { rendered, view, excluded };
    excluded.push(...byPeer.values());
    sets = Object.fromEntries(Object.entries(sets).map(([n, peers]) => [n, peers.filter((p) => !byPeer.has(p))]));
  }
}

/** The file's new content from its mode (block, replace, template); replace edits end at the deadline. */
async function edit(
  f: FileConfig,
  at: string,
  rendered: RenderedFile,
  current: string | undefined,
  signal: AbortSignal,
): Promise<EditResult & { unmatched?: number[] }> {
  if (f.block !== undefined) {
    return applyBlock(current ?? "", {
      name: f.name,
      comment: f.comment,
      body: rendered.body ?? "",
      position: f.position ?? "bottom",
    });
  }
  if (f.replace !== undefined) {
    if (current === undefined) return { ok: false, problem: "it does not exist, and replace edits an existing file" };
    const edits = f.replace.map((r, i) => ({ match: new RegExp(r.match), with: rendered.withs?.[i] ?? "" }));
    let result;
    try {
      // In a worker stopped at the deadline: a configured pattern that backtracks badly cannot hold the run.
      result = await applyReplaceStoppable(current, edits, signal);
    } catch (error) {
      if (!(error instanceof ReplaceStoppedError)) throw error;
      const i = error.edit;
      if (i === undefined) return { ok: false, problem: `${at}.replace not run: the deadline had passed` };
      return {
        ok: false,
        problem:
          `${at}.replace.${i}.match ${JSON.stringify(f.replace[i]!.match)} was still running at the deadline ` +
          `(a pattern that backtracks badly on a line of ${f.path}?)`,
      };
    }
    return { ok: true, content: result.content, unmatched: result.matched.flatMap((n, i) => (n === 0 ? [i] : [])) };
  }
  return { ok: true, content: rendered.text ?? "" };
}

function describeEdit(f: FileConfig | undefined, before: string | undefined, after: string, left: number): string {
  const { added, removed } = lineChanges(before ?? "", after);
  const what = !f
    ? "stale block removed"
    : f.block !== undefined
      ? `block ${f.name}`
      : f.replace
        ? "line edits"
        : "template";
  const lines = before === undefined ? `new file, ${added} lines` : `+${added} -${removed} lines`;
  return `${what}: ${lines}${left > 0 ? `; ${left} unsafe peer${left === 1 ? "" : "s"} left out` : ""}`;
}

function describeMetadata(want: { mode?: number; uid?: number; gid?: number }, stat: Stats): string | undefined {
  const parts: string[] = [];
  if (want.mode !== undefined && (stat.mode & 0o7777) !== want.mode) {
    parts.push(
      `mode ${want.mode.toString(8).padStart(4, "0")} (was ${(stat.mode & 0o7777).toString(8).padStart(4, "0")})`,
    );
  }
  if ((want.uid !== undefined && want.uid !== stat.uid) || (want.gid !== undefined && want.gid !== stat.gid)) {
    parts.push(`owner ${want.uid ?? stat.uid}:${want.gid ?? stat.gid} (was ${stat.uid}:${stat.gid})`);
  }
  return parts.length > 0 ? parts.join(", ") : undefined;
}

async function planFile(
  ctx: ActionContext,
  f: FileConfig,
  at: string,
  sources: Sources,
  env: FileEnv,
): Promise<FilePlan> {
  const [file, ownership] = await Promise.all([
    ctx.fs.resolveFile(f.path, { follow: f.follow_symlinks, at: `${at}.path` }),
    resolveOwnership(ctx, f, at),
  ]);
  const { stat } = file;
  const blocks = f.block !== undefined ? [{ path: f.path, name: f.name, comment: f.comment }] : [];
  const plan: FilePlan = {
    at,
    path: f.path,
    target: file.path,
    ...ownership,
    unmatched: [],
    backup: f.backup,
    blocks,
    hostPath: ctx.fs.path(file.path),
  };
  const notTouched = (problem: string): FilePlan => ({ ...plan, problem });

  // Only in `plan`, when discovery failed (run skips this action then): an empty set would look like "no peers".
  const unknown = [...sources.use.peerSets].filter((n) => env.sets[n] === undefined);
  if (unknown.length > 0) {
    return notTouched(`not touched: ${unknown.map((n) => `peers.${n}`).join(", ")} could not be discovered`);
  }
  const short = shortSets(sources.use, env.sets);
  const waiting = short.filter(([, r]) => r.status === "waiting");
  const ended = short.filter(([, r]) => r.status === "short");
  if (ended.length > 0) {
    const which = ended.map(([n, r]) => `peers.${n} has ${r.peers.length} of min ${r.min}`).join(", ");
    return notTouched(`not touched: ${which} after the wait`);
  }
  const current = await readCurrent(ctx, file);
  if (current.problem) return notTouched(`not touched: ${current.problem}`);

  const safe = renderSafely(ctx, f, at, sources, env);
  if ("problem" in safe) return notTouched(safe.problem);
  const peers: Record<string, PeerView[]> = Object.fromEntries(Object.entries(env.sets).map(([n, r]) => [n, r.peers]));
  for (const x of safe.excluded) {
    warnOnce(
      ctx,
      `${f.path}: left out peer ${x.peer.id} (${quoted(x.peer.ip)}) of peers.${x.set}: ${x.problems.join("; ")}`,
    );
  }
  const { view } = safe;
  const cleaned = withoutStale(current.text ?? "", env.stale);
  if (!cleaned.ok) return notTouched(`not touched: ${cleaned.problem}`);
  const currentText = current.text === undefined ? undefined : cleaned.content;
  const edited = await edit(f, at, safe.rendered, currentText, ctx.deadline.signal);
  if (!edited.ok) return notTouched(`not touched: ${edited.problem}`);

  plan.unmatched = (edited.unmatched ?? []).map(
    (i) => `${at}.replace.${i}: match ${JSON.stringify(f.replace![i]!.match)} found nothing in ${f.path}`,
  );
  // Commands see every discovered peer's address (checked there) and the tags, whatever the file's content uses.
  const envValues: EnvValues = { view, tags: env.commandTags, peers };
  try {
    // Rendered now, so a value that cannot be an argument (NUL) leaves the file untouched, said in the plan too; the
    // check again once the staged file has its name.
    if (f.check !== undefined) {
      renderCommand(f.check, { ...view, path: plan.hostPath, staged: plan.hostPath }, `${at}.check`);
      plan.check = { command: f.check, view, env: envValues };
    }
    if (f.on_change !== undefined) {
      const argv = renderCommand(f.on_change, { ...view, path: plan.hostPath }, `${at}.on_change`);
      plan.onChange = { argv, env: envValues };
    }
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return notTouched(`not touched: ${error.message}`);
  }
  const note =
    waiting.length > 0
      ? ` (with the peers found so far; run waits for ${waiting.map(([n]) => `peers.${n}`).join(", ")})`
      : "";
  if (edited.content !== current.text) {
    plan.after = edited.content;
    const kind = current.text === undefined ? "create" : "update";
    plan.change = {
      kind,
      target: f.path,
      detail: describeEdit(f, current.text, edited.content, safe.excluded.length) + note,
    };
  } else if (stat) {
    const meta = describeMetadata(ownership, stat);
    if (meta) plan.change = { kind: "chmod", target: f.path, detail: meta };
  }
  return plan;
}

/** A file the configuration no longer names but whose block the previous run wrote: the block is removed. */
async function planStaleRemoval(ctx: ActionContext, path: string, stale: ManagedBlock[]): Promise<FilePlan> {
  const at = "files (removed)";
  // No command runs for it: hostPath is never used.
  const plan: FilePlan = { at, path, target: path, hostPath: path, unmatched: [], backup: true, blocks: stale };
  let file: Resolved;
  let current: { text?: string; problem?: string };
  try {
    // A path read back from state.json is checked as one from the configuration: it cannot lead out of the root.
    file = await ctx.fs.resolveFile(path, { follow: true, at });
    current = file.stat ? await readCurrent(ctx, file) : {};
  } catch (error) {
    return { ...plan, problem: `block not removed: ${describeCause(error)}` };
  }
  if (current.text === undefined && !current.problem) return { ...plan, blocks: [] };
  if (current.problem) return { ...plan, target: file.path, problem: `block not removed: ${current.problem}` };
  const cleaned = withoutStale(current.text!, stale);
  if (!cleaned.ok) return { ...plan, target: file.path, problem: `block not removed: ${cleaned.problem}` };
  const done = { ...plan, target: file.path, blocks: [] };
  if (cleaned.content === current.text) return done;
  const names = stale.map((b) => b.name).join(", ");
  return {
    ...done,
    after: cleaned.content,
    change: { kind: "update", target: path, detail: `block ${names} removed (no longer configured)` },
  };
}

// ---- writing ---------------------------------------------------------------------------------------------------------

/** The values a file's commands see, as environment variables (files/command-env.ts). */
interface EnvValues {
  view: TemplateView;
  tags: Record<string, string> | undefined;
  peers: Record<string, PeerView[]>;
}

function envFor(ctx: ActionContext, values: EnvValues, path: string, staged?: string): Record<string, string> {
  const { env, leftOut } = commandEnv({ ...values, path, ...(staged !== undefined && { staged }) });
  for (const why of leftOut) warnOnce(ctx, `commands of ${ctx.fs.inside(path)}: ${why}`);
  return env;
}

async function runCheck(ctx: ActionContext, plan: FilePlan, staged: string): Promise<void> {
  if (!plan.check) return;
  const at = `${plan.at}.check`;
  const argv = renderCommand(plan.check.command, { ...plan.check.view, path: plan.hostPath, staged }, at);
  const env = envFor(ctx, plan.check.env, plan.hostPath, staged);
  const result = await runCommand(argv, { cwd: ctx.fs.root, signal: ctx.deadline.signal, env });
  if (result.code !== 0) {
    throw new CheckFailedError(
      `check refused the new content (${describeResult(result)}); ${plan.path} left as it was`,
    );
  }
}

const backupOf = (plan: FilePlan): string | undefined => (plan.backup ? `${plan.target}.bootlace-bak` : undefined);

/** Writes one planned file; true when its content changed (so its on_change is due). */
async function writePlanned(ctx: ActionContext, plan: FilePlan): Promise<boolean> {
  const content = plan.after ?? (await ctx.fs.readBytes(plan.target));
  if (content === undefined) throw new Error(`${plan.target} is gone since the plan; not created`);
  const backup = backupOf(plan);
  const result = await ctx.fs.write({
    path: plan.target,
    content,
    ...(plan.mode !== undefined && { mode: plan.mode }),
    ...(plan.uid !== undefined && { uid: plan.uid }),
    ...(plan.gid !== undefined && { gid: plan.gid }),
    ...(backup !== undefined && { backup }),
    ...(plan.check && { check: (staged: string) => runCheck(ctx, plan, staged) }),
  });
  return result.changed;
}

// ---- the action -------------------------------------------------------------------------------------------------

/** A string command as written (what the shell ran), an argv as its elements joined by spaces: for the report. */
function describeCommand(argv: string[]): string {
  return argv[0] === "/bin/sh" && argv[1] === "-c" && argv.length === 3 ? argv[2]! : argv.join(" ");
}

const hasCommand = (f: FileConfig): boolean => f.check !== undefined || f.on_change !== undefined;

const usesElasticIp = (f: FileConfig): boolean =>
  f.template !== undefined ||
  inlineTemplates(f).some(mentionsElasticIp) ||
  commandMentions(f.check).elasticIp ||
  commandMentions(f.on_change).elasticIp;

/** Whether a file may use this instance's tags (its commands get them as BOOTLACE_TAG_*), read from the API when IMDS does not expose them. */
const mayUseTags = (f: FileConfig): boolean => {
  const use = fieldUse(inlineTemplates(f));
  return f.template !== undefined || use.allTags || use.tags.size > 0 || hasCommand(f);
};

/**
 * The tags commands see. Read for them alone when no template needed them: a failure then (no permission to read them
 * from the API) only leaves BOOTLACE_TAG_* unset, with a warning, rather than failing files that merely reload a service.
 */
async function tagsForCommands(ctx: ActionContext, files: FileConfig[]): Promise<Record<string, string> | undefined> {
  if (!files.some(hasCommand)) return undefined;
  try {
    return await ctx.tags();
  } catch (error) {
    warnOnce(
      ctx,
      `commands run without BOOTLACE_TAG_*: this instance's tags could not be read: ${describeCause(error)}`,
    );
    return undefined;
  }
}

export const filesAction: Action<FilesPlanData> = {
  name: "files",

  // `files: []` still runs: it removes the blocks earlier runs wrote.
  enabled: (config) => config.files !== undefined,

  // Conservatively: a template file's use of peers or of the Elastic IP is known only once it is read.
  dependsOn: (config) => [
    ...(Object.keys(config.peers ?? {}).length > 0 ? (["peers"] as const) : []),
    ...(config.elastic_ip && (config.files ?? []).some(usesElasticIp) ? (["elastic_ip"] as const) : []),
  ],

  async plan(ctx): Promise<Plan<FilesPlanData>> {
    const files = ctx.config.files ?? [];
    const peersOut = ctx.upstream.peers as PeersOutput | undefined;
    const sources = await allOrConfigErrors(files.map((f, i) => readSources(ctx, f, `files.${i}`)));
    const needTags = sources.some((s) => s.use.allTags || s.use.tags.size > 0);
    // From ctx.tags(), read once for every action: the peers action's copy is empty when its filters did not use them.
    const tags = needTags ? await ctx.tags() : {};
    const commandTags = needTags ? tags : await tagsForCommands(ctx, files);

    const previous = (ctx.previous as FilesSaved | undefined)?.blocks ?? [];
    const configured = new Set(files.map((f) => f.path));
    const isStale = (b: ManagedBlock) =>
      !files.some((f) => f.path === b.path && f.block !== undefined && f.name === b.name && f.comment === b.comment);
    const plans = await allOrConfigErrors(
      files.map((f, i) =>
        planFile(ctx, f, `files.${i}`, sources[i]!, {
          sets: peersOut?.sets ?? {},
          tags,
          commandTags,
          stale: previous.filter((b) => b.path === f.path && isStale(b)),
        }),
      ),
    );
    const orphans = new Map<string, ManagedBlock[]>();
    for (const b of previous) if (!configured.has(b.path)) orphans.set(b.path, [...(orphans.get(b.path) ?? []), b]);
    plans.push(...(await Promise.all([...orphans].map(([path, stale]) => planStaleRemoval(ctx, path, stale)))));

    if (files.some((f) => f.path === "/etc/hosts")) {
      const advice = await etcHostsAdvice(ctx.fs);
      if (advice) warnOnce(ctx, `/etc/hosts: ${advice}`);
    }
    for (const p of plans) if (p.problem) warnOnce(ctx, `${p.at} ${p.path}: ${p.problem}`);
    for (const p of plans) for (const u of p.unmatched) warnOnce(ctx, u);
    const sets = peersOut?.sets ?? {};
    const used = new Set(sources.flatMap((s) => (s.use.allPeerSets ? Object.keys(sets) : [...s.use.peerSets])));
    const shortSets = Object.entries(sets)
      .filter(([name, r]) => r.status === "short" && !used.has(name))
      .map(([name, r]) => describeSet(name, r));
    return { changes: plans.flatMap((p) => p.change ?? []), data: { files: plans, shortSets } };
  },

  async apply(ctx, plan): Promise<Outcome> {
    const changes: Change[] = [];
    const failures: string[] = [...plan.data.shortSets];
    const previous = (ctx.previous as FilesSaved | undefined)?.blocks ?? [];
    const blocks: ManagedBlock[] = [];
    // Each distinct command once (by its rendered argv), with the environment of the first file that named it.
    const commands = new Map<string, { argv: string[]; env: Record<string, string> }>();
    for (const p of plan.data.files) {
      const keepPrevious = () => blocks.push(...previous.filter((b) => b.path === p.path));
      if (p.problem) {
        failures.push(`${p.at} ${p.path}: ${p.problem}`);
        keepPrevious();
        continue;
      }
      try {
        if (!p.change) {
          // Nothing to write, but what a killed writer left beside it goes all the same.
          await ctx.fs.removeLeftovers(p.target, backupOf(p));
        } else if ((await writePlanned(ctx, p)) && p.onChange && !commands.has(JSON.stringify(p.onChange.argv))) {
          const env = envFor(ctx, p.onChange.env, p.hostPath);
          commands.set(JSON.stringify(p.onChange.argv), { argv: p.onChange.argv, env });
        }
        if (p.change) changes.push(p.change);
        blocks.push(...p.blocks);
      } catch (error) {
        const refused = error instanceof CheckFailedError || error instanceof WriteRefusedError;
        failures.push(`${p.at} ${p.path}: ${refused ? error.message : describeCause(error)}`);
        keepPrevious();
      }
      failures.push(...p.unmatched);
    }
    // Once each, after every file is written: one reload even when several files name the same command.
    for (const { argv, env } of commands.values()) {
      const result = await runCommand(argv, { cwd: ctx.fs.root, signal: ctx.deadline.signal, env });
      const shown = describeCommand(argv);
      if (result.code === 0) {
        changes.push({ kind: "on_change", target: shown });
      } else {
        failures.push(`on_change ${JSON.stringify(shown)} failed: ${describeResult(result)}`);
      }
    }
    const state: FilesSaved = { blocks };
    return { changes, state, ...(failures.length > 0 && { failures }) };
  },

  permissions: (config) => ((config.files ?? []).some(mayUseTags) ? [describeInstancesStatement] : []),
};
