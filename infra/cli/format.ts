/** Turning records and states into lines for people and for `--json`, and parsing time arguments. */
import { Buffer } from "node:buffer";
import process from "node:process";
import type { LogRecord } from "../../actors/ports.ts";
import { ValidationError } from "../../events/mod.ts";

/**
 * Text for a terminal, from wherever it came (a name someone chose, a note, a server's
 * message): C0 and C1 control characters other than tab and newline, and the invisible
 * Unicode marks that reorder or hide text, are dropped, so nothing from the network can move
 * the cursor, recolour, retitle or rewrite what the screen shows.
 */
// deno-lint-ignore no-control-regex
const unsafeForTerminal = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]/g;

export function terminalSafe(text: string): string {
  return text.replace(unsafeForTerminal, "");
}

/** Prints one line on stdout, made safe for a terminal. */
export function printLine(line: string): void {
  process.stdout.write(terminalSafe(line) + "\n");
}

/**
 * JSON for any decoded msgpack: bytes as `{"$base64": ...}` so binary fields survive a round
 * trip through text, and 64-bit integers beyond 2^53 as decimal strings.
 */
export function toJson(value: unknown, indent?: number): string {
  return JSON.stringify(
    value,
    function (this: Record<string, unknown>, key, field) {
      // The holder's own value: Node's Buffer would already have been turned into {type, data} by its toJSON.
      const raw = key === "" ? field : this[key];
      if (raw instanceof Uint8Array) return { $base64: Buffer.from(raw).toString("base64") };
      return typeof field === "bigint" ? field.toString() : field;
    },
    indent,
  );
}

export function recordToJson(record: LogRecord): Record<string, unknown> {
  const base = { seq: record.seq, subject: record.subject, time: new Date(record.storedAt).toISOString() };
  if (!record.ok) return { ...base, error: { code: record.error.code, message: record.error.message } };
  const { type, v, id, at, by, data } = record.event;
  return { ...base, type, v, id, at: new Date(at).toISOString(), by, data };
}

export function recordToLine(record: LogRecord): string {
  const head = `${String(record.seq).padStart(6)}  ${new Date(record.storedAt).toISOString()}  ${record.subject}`;
  if (!record.ok) return `${head}  !${record.error.code}: ${record.error.message}`;
  return `${head}  ${record.event.type}  ${toJson(record.event.data)}`;
}

const durationUnitsMs: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since`: an ISO time, or a duration back from now such as 90s, 15m, 2h, 7d. */
export function parseSince(text: string, now: number): number {
  const duration = /^(\d+)(s|m|h|d)$/.exec(text);
  if (duration) return inRange(now - Number(duration[1]) * durationUnitsMs[duration[2]!]!, text, "--since");
  return parseTime(text, "--since");
}

/** `--at`: a stream sequence (a whole number) or an ISO time. */
export function parseAt(text: string): { seq: number } | { time: number } {
  if (/^\d+$/.test(text)) return { seq: Number(text) };
  return { time: parseTime(text, "--at") };
}

export function parseSeq(text: string, option: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1) {
    throw new ValidationError(
      `${option} must be a stream sequence (a whole number from 1), got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}

function parseTime(text: string, option: string): number {
  // Only full ISO dates or date-times: Date.parse alone would accept "1" or "May".
  const time = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(time)) {
    throw new ValidationError(
      `${option} must be ${
        option === "--at" ? "a sequence number" : "a duration like 15m"
      } or an ISO time like 2026-11-20T10:00:00Z, got ${JSON.stringify(text)}`,
    );
  }
  return inRange(time, text, option);
}

/** Times before 1970 or past year 9999 cannot be shown or compared; say so rather than fail later. */
function inRange(time: number, text: string, option: string): number {
  if (!(time >= 0 && time <= maxTimeMs)) {
    throw new ValidationError(`${option} ${JSON.stringify(text)} is outside the years 1970 to 9999`);
  }
  return time;
}

const maxTimeMs = Date.parse("9999-12-31T23:59:59.999Z");

/** `--subject`: a full subject, or a short form below veil.evt (`node.server-1`, `node.>`). */
export function fullSubject(text: string): string {
  const subject = text.startsWith("veil.") ? text : `veil.evt.${text}`;
  if (!/^[A-Za-z0-9_\-*>]+(\.[A-Za-z0-9_\-*>]+)*$/.test(subject) || !subject.startsWith("veil.evt.")) {
    throw new ValidationError(
      `--subject ${JSON.stringify(text)} is not a subject under veil.evt (e.g. node.server-1 or veil.evt.node.>)`,
    );
  }
  return subject;
}

const byteUnits: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** A size such as `10GB`, `512MiB` or `1000000` (bytes), as whole bytes from 1 to `max`. */
export function parseBytes(text: string, option: string, max: number): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]i?b|b)?$/i.exec(text.trim());
  const value = match ? Math.floor(Number(match[1]) * byteUnits[(match[2] ?? "b").toLowerCase()]!) : NaN;
  if (!(value >= 1 && value <= max)) {
    throw new ValidationError(
      `${option} must be a size like 500MB, 10GB or 2TiB (at most ${formatBytes(max)}), got ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** Bytes for people: 1.5 GB, 300 kB, 12 B (powers of 1000, as disks are sold). */
export function formatBytes(bytes: number): string {
  const units = ["B", "kB", "MB", "GB", "TB", "PB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
