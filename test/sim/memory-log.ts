/**
 * An event log in memory with JetStream's semantics where they matter to deciders:
 * sequences, per-subject expected sequences (ConcurrencyError on conflict) and
 * deduplication by event id. Events are encoded and decoded with the real codec. For the
 * simulator only: tests of real behaviour use a real nats-server.
 */
import type { AppendOptions, Clock, EventLog, LogRecord, ReadOptions, ReplayOptions } from "../../actors/ports.ts";
import { ConcurrencyError, encodeEvent, eventSubjectsAll, subjectMatches, type VeilEvent } from "../../events/mod.ts";
import { decodeRecord } from "../../actors/log-record.ts";

interface Entry {
  readonly seq: number;
  readonly subject: string;
  readonly storedAt: number;
  readonly bytes: Uint8Array;
  /** Decoded once, when stored: the simulator reads the log on every message. */
  readonly record: LogRecord;
}

export class MemoryEventLog implements EventLog {
  readonly #entries: Entry[] = [];
  readonly #seqById = new Map<string, number>();
  readonly #waiting = new Set<() => void>();

  constructor(
    private readonly clock: Clock,
    private readonly name = "memory",
    /** How an append's acknowledgement is delayed (the simulator's network to the broker); none by default. */
    private readonly acknowledge: (ack: () => void) => void = (ack) => ack(),
  ) {}

  /** Every entry, decoded: what tests check invariants against. */
  get records(): LogRecord[] {
    return this.#entries.map((entry) => entry.record);
  }

  /** Every entry as stored: what a failing seed's dump is made of, and what is searched for secrets. */
  get stored(): readonly { seq: number; subject: string; storedAt: number; bytes: Uint8Array }[] {
    return this.#entries.map(({ seq, subject, storedAt, bytes }) => ({ seq, subject, storedAt, bytes }));
  }

  /** Stores raw bytes as a misbehaving publisher would, bypassing validation. */
  appendRaw(subject: string, bytes: Uint8Array): number {
    return this.#store(subject, bytes);
  }

  append(subject: string, events: readonly VeilEvent[], options: AppendOptions = {}): Promise<number[]> {
    const payloads = events.map((event) => encodeEvent(event));
    const seqs: number[] = [];
    let expected = options.expectedSubjectSeq;
    let conflict: ConcurrencyError | undefined;
    for (const [index, event] of events.entries()) {
      const duplicate = this.#seqById.get(event.id);
      if (duplicate !== undefined) {
        seqs.push(duplicate);
        continue;
      }
      if (expected !== undefined && this.#lastSeqOf(subject) !== expected) {
        conflict = new ConcurrencyError(subject, expected);
        break;
      }
      const seq = this.#store(subject, payloads[index]!);
      this.#seqById.set(event.id, seq);
      seqs.push(seq);
      if (expected !== undefined) expected = seq;
    }
    // Stored (or refused) now; the writer hears of it later, as from a real broker.
    return new Promise((resolve, reject) => this.acknowledge(() => (conflict ? reject(conflict) : resolve(seqs))));
  }

  readLast(subject: string): Promise<LogRecord | undefined> {
    const last = this.#entries.findLast((entry) => entry.subject === subject);
    return Promise.resolve(last?.record);
  }

  async readAggregate(subject: string): Promise<{ records: LogRecord[]; lastSubjectSeq: number }> {
    const records: LogRecord[] = [];
    for await (const record of this.replay({ subject })) records.push(record);
    return { records, lastSubjectSeq: records.at(-1)?.seq ?? 0 };
  }

  async *replay(options: ReplayOptions = {}): AsyncIterable<LogRecord> {
    const end = this.#entries.length;
    for (const entry of this.#entries.slice(0, end)) {
      if (!this.#selected(entry, options)) continue;
      if (options.untilSeq !== undefined && entry.seq > options.untilSeq) return;
      if (options.untilTime !== undefined && entry.storedAt > options.untilTime) return;
      yield entry.record;
    }
  }

  async *follow(options: ReadOptions & { readonly signal: AbortSignal }): AsyncIterable<LogRecord> {
    let next = 0;
    while (!options.signal.aborted) {
      while (next < this.#entries.length) {
        const entry = this.#entries[next++]!;
        if (this.#selected(entry, options)) yield entry.record;
      }
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#waiting.delete(wake);
          options.signal.removeEventListener("abort", wake);
          resolve();
        };
        this.#waiting.add(wake);
        options.signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  lastSeq(): Promise<number> {
    return Promise.resolve(this.#entries.length);
  }

  identity(): Promise<string> {
    return Promise.resolve(this.name);
  }

  #store(subject: string, bytes: Uint8Array): number {
    const seq = this.#entries.length + 1;
    const storedAt = this.clock.now();
    this.#entries.push({ seq, subject, storedAt, bytes, record: decodeRecord(seq, subject, storedAt, bytes) });
    for (const wake of [...this.#waiting]) wake();
    return seq;
  }

  #lastSeqOf(subject: string): number {
    return this.#entries.findLast((entry) => entry.subject === subject)?.seq ?? 0;
  }

  #selected(entry: Entry, options: ReadOptions): boolean {
    return entry.seq >= (options.fromSeq ?? 1) &&
      (options.since === undefined || entry.storedAt >= options.since) &&
      subjectMatches(options.subject ?? eventSubjectsAll, entry.subject);
  }
}
