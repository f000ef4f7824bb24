/**
 * A plain line logger to stderr. Field names that could carry a secret are redacted here,
 * as a last line of defence: callers must never pass secrets in the first place.
 */
import process from "node:process";
import type { Clock, LogFields, Logger } from "../actors/ports.ts";

export const logLevels = ["debug", "info", "warn", "error", "silent"] as const;
export type LogLevel = (typeof logLevels)[number];

const secretFieldPattern = /pass(word|phrase)?|secret|token|otp|private|^key$|seed/i;

function formatFields(fields: LogFields = {}): string {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([name, value]) => {
      const shown = secretFieldPattern.test(name) ? "[redacted]" : String(value);
      return `${name}=${/[\s"=]/.test(shown) ? JSON.stringify(shown) : shown}`;
    })
    .join(" ");
}

export function createLogger(options: {
  level: LogLevel;
  clock: Clock;
  /** Who is speaking, e.g. "server-1". */
  name?: string;
  write?: (line: string) => void;
}): Logger {
  const threshold = logLevels.indexOf(options.level);
  const write = options.write ?? ((line: string) => process.stderr.write(line + "\n"));
  const emit = (level: LogLevel) => (message: string, fields?: LogFields) => {
    if (logLevels.indexOf(level) < threshold) return;
    const time = new Date(options.clock.now()).toISOString();
    const who = options.name ? ` [${options.name}]` : "";
    const rest = formatFields(fields);
    write(`${time} ${level.toUpperCase()}${who} ${message}${rest ? " " + rest : ""}`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

export function childLogger(logger: Logger, fields: LogFields): Logger {
  const withFields = (log: Logger["info"]) => (message: string, more?: LogFields) =>
    log(message, { ...fields, ...more });
  return {
    debug: withFields(logger.debug),
    info: withFields(logger.info),
    warn: withFields(logger.warn),
    error: withFields(logger.error),
  };
}

/**
 * A URL, or a comma-separated list of them (NATS_URL may name a cluster), fit to show: any
 * user and password in it are replaced, so they never reach a log or a terminal.
 */
export function displayUrl(text: string): string {
  return text.split(",").map((url) => displayOneUrl(url.trim())).join(",");
}

function displayOneUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = "***";
    parsed.password = "";
    return parsed.toString().replace(/\/$/, "");
  } catch {
    return "(an unparseable URL)";
  }
}
