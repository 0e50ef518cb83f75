// What every command gets from runAgent, and the input helpers the configuration-reading commands share.
import type { AwsCredentialIdentityProvider } from "@smithy/types";
import type { Action } from "../actions/types";
import type { Env } from "../aws/clients";
import type { GlobalArgs } from "../cli";
import type { Clock } from "../core/clock";
import type { Logger } from "../core/log";
import type { Deadline } from "../core/retry";

export const exitCodes = { ok: 0, failed: 1, config: 2, metadata: 3 } as const;

export interface AgentOptions {
  argv: string[];
  env: Env;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  clock?: Clock;
  /** Injected AWS credentials; default: the environment's keys, else the instance profile (instance/credentials.ts). */
  credentials?: AwsCredentialIdentityProvider;
  /** The actions to run (default: all); tests may hand in their own list. */
  actions?: readonly Action[];
  cwd?: string;
  /** For `watch`: how it is told to stop or to read its configuration again (default: SIGTERM/SIGINT, SIGHUP). */
  control?: Control;
  /**
   * Called once the command line is read, with the command's --deadline in seconds, for every command bounded by it
   * (all but `watch`, whose passes each have their own): the CLI arms its process watchdog with it (main.ts).
   */
  onDeadline?: (seconds: number) => void;
}

/**
 * How a long-running command is steered. The CLI wires it to process signals; in-process callers (tests, a fleet
 * simulator) hand in their own, so stopping one agent never touches the signals of the process they share.
 */
export interface Control {
  /** Aborted: finish the current pass, then return. */
  stop: AbortSignal;
  /** Each "reload" event: read the configuration and the instance's metadata again before the next pass. */
  reload: EventTarget;
}

export interface Session {
  o: AgentOptions;
  args: GlobalArgs;
  clock: Clock;
  log: Logger;
  deadline: Deadline;
}
