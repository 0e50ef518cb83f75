// The whole agent as a function: argv, environment, clock and output in; exit code out. The CLI is a thin shell
// around it, and tests run many agents at once in one process, each with its own endpoints and root folder.
import { sdkPackagesLoaded } from "./aws/clients";
import type { Parsed } from "./cli";
import { parseCli } from "./cli";
import { systemClock } from "./core/clock";
import type { AgentOptions, Session } from "./commands/session";
import { exitCodes } from "./commands/session";
import { MetadataUnavailableError, configErrorsIn, describeCause } from "./core/errors";
import { LockBusyError } from "./root/lock";
import type { Logger } from "./core/log";
import { createLogger } from "./core/log";
import { deadlineAfter } from "./core/retry";

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
  const { deadline, end } = deadlineAfter(clock, args.deadline);
  if (parsed.command !== "watch") o.onDeadline?.(args.deadline);
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
      case "doctor":
        return await (await import("./commands/doctor")).doctor(session);
      default: {
        const unknown: never = parsed.command;
        throw new Error(`no command ${String(unknown)}`);
      }
    }
  } catch (error) {
    return reportFailure(log, error);
  } finally {
    end();
    const sdk = sdkPackagesLoaded();
    log.debug(`aws sdk loaded: ${sdk.length > 0 ? sdk.join(", ") : "none"}`);
  }
}

function reportFailure(log: Logger, error: unknown): number {
  const config = configErrorsIn(error);
  if (config.length > 0) {
    for (const e of config) log.error(e.message);
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
