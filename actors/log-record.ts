/** One stored entry as readers see it: decoded, or with the typed reason it could not be. */
import type { LogRecord } from "./ports.ts";
import { decodeEvent, EventDecodeError } from "../events/mod.ts";

export function decodeRecord(seq: number, subject: string, storedAt: number, bytes: Uint8Array): LogRecord {
  // Built field by field rather than spread: this runs for every entry read.
  try {
    return { seq, subject, storedAt, ok: true, event: decodeEvent(bytes) };
  } catch (error) {
    if (error instanceof EventDecodeError) return { seq, subject, storedAt, ok: false, error };
    throw error;
  }
}
