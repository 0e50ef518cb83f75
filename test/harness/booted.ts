// One simulated instance of a world, booted with some user-data, and the real bundle run on it: the shape the
// end-to-end tests of each action share.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { ImdsEmulator, ImdsInstance } from "./imds-emulator";
import { makeRoot, runBootlace, type RunResult } from "./run-bundle";
import type { LaunchOptions, World } from "./world";

export interface Booted {
  instance: ImdsInstance;
  imds: ImdsEmulator;
  /** Its own root folder (--root), so its state.json is its own. */
  root: string;
}

/** A running instance in the world, its IMDS serving this user-data. */
export async function boot(world: World, userData: string, launch: LaunchOptions = {}): Promise<Booted> {
  const instance = await world.launchInstance(launch);
  const imds = await world.startImds({ ...instance, userData });
  return { instance, imds, root: await makeRoot() };
}

/** `bootlace COMMAND --json` on the instance, through the world's fidelity proxy. */
export function runOn(world: World, command: string, b: Booted): Promise<RunResult> {
  return runBootlace([command, "--json"], { imds: b.imds.endpoint, aws: world.proxy.endpoint, root: b.root });
}

/** The parts of state.json the tests look at. */
export interface StateSeen {
  run: { failed: string[]; actions: Record<string, { status: string; error?: string; summary?: string }> };
  saved: Record<string, unknown>;
}

export async function stateOf(b: Booted): Promise<StateSeen> {
  return JSON.parse(await readFile(join(b.root, "var/lib/bootlace/state.json"), "utf8")) as StateSeen;
}
