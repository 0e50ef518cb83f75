// Named errors: each carries what the user needs to fix it, and maps to one exit code.

/** Where a piece of configuration came from: "user-data part 2 (text/x-bootlace)", "/etc/bootlace/bootlace.yaml". */
export interface SourceRef {
  source: string;
  line?: number;
}

/** Bad configuration or usage: exit 2, nothing changed. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
  constructor(
    message: string,
    readonly where?: SourceRef,
    readonly keyPath?: string,
    options?: { cause?: unknown },
  ) {
    super(ConfigError.format(message, where, keyPath), options);
  }

  private static format(message: string, where?: SourceRef, keyPath?: string): string {
    const at = where ? `${where.source}${where.line !== undefined ? `, line ${where.line}` : ""}: ` : "";
    const key = keyPath ? `${keyPath}: ` : "";
    return `${at}${key}${message}`;
  }
}

/** Several configuration errors reported together, so one boot shows every mistake at once. */
export class ConfigErrors extends AggregateError {
  override readonly name = "ConfigErrors";
  declare readonly errors: ConfigError[];
  constructor(errors: ConfigError[]) {
    super(errors, errors.map((e) => e.message).join("\n"));
  }
}

/** The configuration errors an error stands for: itself, or those it aggregates; none for any other error. */
export function configErrorsIn(error: unknown): ConfigError[] {
  if (error instanceof ConfigError) return [error];
  if (error instanceof ConfigErrors) return error.errors;
  return [];
}

/**
 * Settles every step, then throws all their configuration errors together (so one run shows every mistake), else
 * the first other failure; otherwise their values in order.
 */
export async function allOrConfigErrors<T>(steps: Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(steps);
  const errors = settled.flatMap((s) => (s.status === "rejected" ? configErrorsIn(s.reason) : []));
  if (errors.length > 0) throw new ConfigErrors(errors);
  const other = settled.find((s): s is PromiseRejectedResult => s.status === "rejected");
  if (other) throw other.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
}

/** One action's parts that could not be done while the rest was (Outcome.failures). */
export class ActionFailuresError extends Error {
  override readonly name = "PartialFailure";
  constructor(readonly failures: string[]) {
    super(failures.join("; "));
  }
}

/** An action not run because an action it depends on failed. */
export class DependencyFailedError extends Error {
  override readonly name = "DependencyFailed";
}

/** The instance metadata service did not answer usably within the deadline: exit 3. */
export class MetadataUnavailableError extends Error {
  override readonly name = "MetadataUnavailableError";
}

/** An AWS call failed; names the operation and the resource it was about. */
export class AwsCallError extends Error {
  override readonly name = "AwsCallError";
  constructor(
    readonly operation: string,
    readonly resource: string,
    cause: unknown,
  ) {
    super(`${operation} ${resource}: ${describeCause(cause)}`, { cause });
  }

  /** The AWS error code (e.g. "InvalidChangeBatch"), when the cause carries one. */
  get code(): string | undefined {
    return errorCode(this.cause);
  }
}

/** The run's deadline passed while waiting. */
export class DeadlineError extends Error {
  override readonly name = "DeadlineError";
}

/**
 * The code a result carries for an error: the AWS error code of a failed call (e.g. "Throttling"), else the error's
 * own name ("ConfigError", "DeadlineError", "WriteRefusedError"...), else "Error".
 */
export function codeOf(error: unknown): string {
  if (error instanceof AwsCallError) return error.code ?? error.name;
  return errorCode(error) ?? "Error";
}

export function errorCode(error: unknown): string | undefined {
  if (error && typeof error === "object") {
    const e = error as { name?: unknown; Code?: unknown; code?: unknown };
    if (typeof e.Code === "string") return e.Code;
    if (typeof e.name === "string" && e.name !== "Error") return e.name;
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

/**
 * The text a person needs. For Route 53's documented errors (InvalidChangeBatch...) in AWS's wire format, the SDK's
 * message is just "UnknownError" and the real text is only in the parsed body's Error.Message.
 */
export function describeCause(error: unknown): string {
  if (error instanceof Error) {
    const code = errorCode(error);
    const detail = (error as { Error?: { Message?: unknown } }).Error?.Message;
    const message =
      (error.message === "UnknownError" || error.message === "") && typeof detail === "string" ? detail : error.message;
    return code && !message.startsWith(code) ? `${code}: ${message}` : message;
  }
  return String(error);
}
