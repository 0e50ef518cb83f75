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

/** A value as logs show it: bare when it is a plain token, else JSON-quoted (so no value can start a line). */
export function quoted(value: string): string {
  return /^[A-Za-z0-9._:/@=+,-]+$/.test(value) ? value : jsonQuoted(value);
}

/** JSON.stringify for messages: U+0085, U+2028, U+2029 and other invisibles escaped too (still a JSON string). */
export function jsonQuoted(value: string): string {
  return oneLine(JSON.stringify(value));
}

const escapes: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

/**
 * One call, one line: whatever a caller interpolated, every line break (CR, LF, NEL, U+2028, U+2029), control or
 * format character and lone surrogate becomes an escape. Printable text, other languages included, is kept.
 */
export function oneLine(text: string): string {
  return text.replace(
    /[\p{C}\u2028\u2029]/gu,
    (c) =>
      escapes[c] ??
      [...Array(c.length).keys()].map((i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`).join(""),
  );
}

const field = (v: unknown): string => (typeof v === "string" ? quoted(v) : (JSON.stringify(v) ?? String(v)));

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
      // JSON.stringify leaves U+0085, U+2028 and U+2029 raw, which some line readers split on.
      const line = JSON.stringify({ time: new Date(options.now()).toISOString(), level, msg, ...all });
      options.write(oneLine(line) + "\n");
      return;
    }
    const { action, ...rest } = all;
    const prefix = typeof action === "string" ? `${action}: ` : "";
    const tag = level === "info" ? "" : `${level}: `;
    const extra = Object.entries(rest)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}=${field(v)}`)
      .join(" ");
    options.write(oneLine(`bootlace: ${tag}${prefix}${msg}${extra ? ` (${extra})` : ""}`) + "\n");
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
