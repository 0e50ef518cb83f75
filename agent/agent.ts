// The whole agent as a function: argv, environment, clock and output in; exit code out. The CLI is a thin shell
// around it, and tests run many agents at once in one process, each with its own endpoints and root folder.
import { setMaxListeners } from "node:events";
import { sdkPackagesLoaded } from "./aws/clients";
import type { Parsed } from "./cli";
import { parseCli, version } from "./cli";
import type { Clock } from "./core/clock";
import { systemClock } from "./core/clock";
import type { AgentOptions, Session } from "./commands/session";
import { exitCodes } from "./commands/session";
import { ConfigError, ConfigErrors, MetadataUnavailableError, describeCause } from "./core/errors";
import { LockBusyError } from "./root/lock";
import type { Logger } from "./core/log";
import { createLogger } from "./core/log";
import type { Deadline } from "./core/retry";

export type { AgentOptions } from "./commands/session";
export { exitCodes } from "./commands/session";

/** Runs one bootlace command and returns its exit code; never throws, never exits the process. */
export async function runAgent(o: AgentOptions): Promise<number> {
  const parsed: Parsed = await parseCli(o.argv);
  if (parsed.kind === "output") {
    (parsed.exitCode === 0 ? o.stdout : o.stderr)(parsed.text);
    return parsed.exitCode;
  }
  const clock = o.clock ?? systemClock;
  const { args } = parsed;
  const log = createLogger({
    format: args.logFormat,
    level: args.logLevel,
    write: o.stderr,
    now: () => clock.now(),
  });
  const stopDeadline = new AbortController();
  const deadline = startDeadline(clock, args.deadline, stopDeadline.signal);
  const session: Session = { o, args, clock, log, deadline };
  try {
    switch (parsed.command) {
      // Each command's module is loaded only when it runs: --help and status never pay for the configuration
      // schema, the IMDS client or the actions.
      case "run":
      case "plan":
      case "stop":
        return await (await import("./commands/wire")).wire(session, parsed.command);
      case "validate":
        return await (await import("./commands/validate")).validate(session, parsed.file);
      case "status":
        return await (await import("./commands/status")).status(session);
      case "watch":
        return await (await import("./commands/watch")).watch(session);
      case "iam-policy":
        return await (await import("./commands/iam-policy")).iamPolicy(session);
      default:
        log.error(`\`bootlace ${parsed.command}\` is not available in bootlace ${version} yet`);
        return exitCodes.config;
    }
  } catch (error) {
    return reportFailure(log, error);
  } finally {
    stopDeadline.abort();
    const sdk = sdkPackagesLoaded();
    log.debug(`aws sdk loaded: ${sdk.length > 0 ? sdk.join(", ") : "none"}`);
  }
}

/** The run's deadline: an abort signal that fires after the given seconds (cancelled when the command ends). */
function startDeadline(clock: Clock, seconds: number, cancel: AbortSignal): Deadline {
  const controller = new AbortController();
  // Every concurrent wait (IMDS reads, AWS calls, polls) listens on this one signal: more than Node's default 10.
  setMaxListeners(1000, controller.signal);
  const at = clock.now() + seconds * 1000;
  clock.sleep(seconds * 1000, cancel).then(
    () => controller.abort(new Error(`the deadline of ${seconds} s passed`)),
    () => undefined,
  );
  return { at, signal: controller.signal };
}

function reportFailure(log: Logger, error: unknown): number {
  if (error instanceof ConfigErrors) {
    for (const e of error.errors) log.error(e.message);
    log.error("configuration refused: nothing was changed");
    return exitCodes.config;
  }
  if (error instanceof ConfigError) {
    log.error(error.message);
    log.error("configuration refused: nothing was changed");
    return exitCodes.config;
  }
  if (error instanceof MetadataUnavailableError) {
    log.error(error.message);
    return exitCodes.metadata;
  }
  if (error instanceof LockBusyError) {
    log.error(error.message);
    return exitCodes.failed;
  }
  log.error(describeCause(error));
  return exitCodes.failed;
}
