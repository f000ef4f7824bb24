/**
 * A log dump: the stored entries of an event log in one file, as a failing simulation seed
 * leaves it (`npm run sim`), for `veil state --log FILE --at ...` and `veil events --log FILE`
 * to read as they read the broker's log. The file is msgpack: a header and every entry's
 * sequence, subject, stored time and raw bytes (so undecodable entries stay as they were).
 * Read back, it is a read-only EventLog.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { decodeRecord } from "../actors/log-record.ts";
import type { EventLog, LogRecord, ReplayOptions } from "../actors/ports.ts";
import {
  array,
  bytes,
  decodeMessage,
  encodeMessage,
  ForbiddenError,
  integer,
  object,
  oneOf,
  string,
  subjectMatches,
  ValidationError,
} from "../events/mod.ts";

export interface DumpEntry {
  readonly seq: number;
  readonly subject: string;
  readonly storedAt: number;
  readonly bytes: Uint8Array;
}

const dumpFormat = "veil-log-dump";
const dump = object({
  format: oneOf([dumpFormat]),
  version: integer({ min: 1, max: 1 }),
  entries: array(
    object({
      seq: integer({ min: 1 }),
      subject: string({ lengthMin: 1, lengthMax: 1_024 }),
      storedAt: integer({ min: 0 }),
      bytes: bytes({ lengthMax: 1 << 20 }),
    }),
    { lengthMax: 10_000_000 },
  ),
});

export async function writeLogDump(path: string, entries: readonly DumpEntry[]): Promise<void> {
  // Never over a file that is there (or a link planted where the dump goes).
  await writeFile(path, encodeMessage({ format: dumpFormat, version: 1, entries }), { mode: 0o600, flag: "wx" });
}

/** A dump is read whole into memory: one larger than this is refused rather than read. */
export const logDumpBytesMax = 1 << 30;

export async function readLogDump(path: string): Promise<EventLog> {
  const cannot = (error: NodeJS.ErrnoException): never => {
    throw new ValidationError(
      `cannot read the log dump ${path}: ${error.code === "ENOENT" ? "no such file" : error.message}`,
    );
  };
  const { size } = await stat(path).catch(cannot);
  if (size > logDumpBytesMax) {
    throw new ValidationError(`${path} is ${size} bytes, over the ${logDumpBytesMax}-byte limit for a log dump`);
  }
  const raw = await readFile(path).catch(cannot);
  let entries: readonly DumpEntry[];
  try {
    entries = dump.parse(decodeMessage(raw, raw.byteLength)).entries;
  } catch (error) {
    throw new ValidationError(`${path} is not a veil log dump: ${(error as Error).message}`, { cause: error });
  }
  // A log's sequences only grow: a dump whose do not was not written by veil.
  const disordered = entries.findIndex((entry, index) => index > 0 && entry.seq <= entries[index - 1]!.seq);
  if (disordered >= 0) {
    throw new ValidationError(
      `${path} is not a veil log dump: entry ${disordered} has sequence ${entries[disordered]!.seq} after ${
        entries[disordered - 1]!.seq
      }`,
    );
  }
  const records: LogRecord[] = entries.map((entry) =>
    decodeRecord(entry.seq, entry.subject, entry.storedAt, entry.bytes)
  );
  const of = (subject: string) => records.filter((record) => record.subject === subject);
  const selected = (options: ReplayOptions) =>
    records.filter((record) =>
      (options.subject === undefined || subjectMatches(options.subject, record.subject)) &&
      record.seq >= (options.fromSeq ?? 1) && (options.since === undefined || record.storedAt >= options.since) &&
      (options.untilSeq === undefined || record.seq <= options.untilSeq) &&
      (options.untilTime === undefined || record.storedAt <= options.untilTime)
    );
  async function* iterate(options: ReplayOptions) {
    yield* selected(options);
  }
  return {
    append: () => Promise.reject(new ForbiddenError(`${path} is a log dump: it is read, never appended to`)),
    readAggregate: (subject) => Promise.resolve({ records: of(subject), lastSubjectSeq: of(subject).at(-1)?.seq ?? 0 }),
    readLast: (subject) => Promise.resolve(of(subject).at(-1)),
    replay: (options = {}) => iterate(options),
    // A dump does not grow: following it is reading it to its end.
    follow: (options) => iterate(options),
    lastSeq: () => Promise.resolve(records.at(-1)?.seq ?? 0),
    identity: () => Promise.resolve(`dump:${path}`),
  };
}
