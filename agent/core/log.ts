// Logging to stderr, as text for people or JSON lines for log shippers; stdout is kept for --json results.

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "text" | "json";
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry these fields too (e.g. the action's name). */
  child(fields: LogFields): Logger;
}

const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  format: LogFormat;
  level: LogLevel;
  write: (line: string) => void;
  now: () => number;
}

export function createLogger(options: LoggerOptions, base: LogFields = {}): Logger {
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}): void => {
    if (rank[level] < rank[options.level]) return;
    const all = { ...base, ...fields };
    if (options.format === "json") {
      options.write(JSON.stringify({ time: new Date(options.now()).toISOString(), level, msg, ...all }) + "\n");
      return;
    }
    const { action, ...rest } = all;
    const prefix = typeof action === "string" ? `${action}: ` : "";
    const tag = level === "info" ? "" : `${level}: `;
    const extra = Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
      .join(" ");
    options.write(`bootlace: ${tag}${prefix}${msg}${extra ? ` (${extra})` : ""}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

/** A logger that drops everything: for library callers and tests that do not look at logs. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
