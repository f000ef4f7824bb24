/**
 * The event log on JetStream. Appends carry the event id as Nats-Msg-Id (a retried append is
 * stored once) and, when deciding against an aggregate, its expected last subject sequence
 * (a concurrent writer makes the append fail with a ConcurrencyError instead of
 * interleaving). Reads go through ordered consumers; every entry comes out either decoded
 * or with the typed reason it could not be, so one bad message never stops a reader.
 */
import { headers, TimeoutError as NatsTimeoutError } from "@nats-io/nats-core";
import {
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type OrderedConsumerOptions,
} from "@nats-io/jetstream";
import {
  ConcurrencyError,
  decodeEvent,
  encodeEvent,
  EventDecodeError,
  eventSubjectsAll,
  limits,
  TimeoutError,
  UnavailableError,
  type VeilEvent,
} from "../../events/mod.ts";
import type { AppendOptions, EventLog, LogRecord, ReadOptions, ReplayOptions } from "../../actors/ports.ts";
import { eventStreamName } from "./streams.ts";

interface LogEnd {
  readonly seq: number;
  readonly storedAt: number;
}

export class NatsEventLog implements EventLog {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly streamName = eventStreamName,
  ) {}

  async append(subject: string, events: readonly VeilEvent[], options: AppendOptions = {}): Promise<number[]> {
    // Encode (and so validate) everything before the first write: nothing half-valid is stored.
    const payloads = events.map((event) => encodeEvent(event));
    const seqs: number[] = [];
    let expected = options.expectedSubjectSeq;
    for (let index = 0; index < events.length; index++) {
      const event = events[index]!;
      const messageHeaders = headers();
      messageHeaders.set("Veil-Type", event.type);
      messageHeaders.set("Veil-Version", String(event.v));
      messageHeaders.set("Content-Type", "application/msgpack");
      const publishOptions = { msgID: event.id, headers: messageHeaders, timeout: limits.appendAckTimeoutMs };
      try {
        const ack = await this.js.publish(
          subject,
          payloads[index],
          expected === undefined ? publishOptions : { ...publishOptions, expect: { lastSubjectSequence: expected } },
        );
        seqs.push(ack.seq);
        if (expected !== undefined) expected = ack.seq;
      } catch (error) {
        throw appendError(error, subject, expected);
      }
    }
    return seqs;
  }

  async readAggregate(subject: string): Promise<{ records: LogRecord[]; lastSubjectSeq: number }> {
    const records: LogRecord[] = [];
    for await (const record of this.replay({ subject })) records.push(record);
    return { records, lastSubjectSeq: records.at(-1)?.seq ?? 0 };
  }

  async *replay(options: ReplayOptions = {}): AsyncIterable<LogRecord> {
    const end = await this.end(options.subject);
    if (!end) return;
    const lastSeq = Math.min(end.seq, options.untilSeq ?? Number.MAX_SAFE_INTEGER);
    if (lastSeq < (options.fromSeq ?? 1)) return;
    if (options.since !== undefined && end.storedAt < options.since) return;
    if (options.untilTime !== undefined && options.untilTime < 0) return;
    const messages = await this.open(options);
    try {
      for await (const message of messages) {
        const record = toRecord(message);
        if (options.untilTime !== undefined && record.storedAt > options.untilTime) return;
        if (record.seq > lastSeq) return;
        yield record;
        // pending counts what matched after this entry when it was sent: 0 means we are at the end.
        if (record.seq >= lastSeq || message.info.pending === 0) return;
      }
    } finally {
      void messages.stop();
    }
  }

  async *follow(options: ReadOptions & { readonly signal: AbortSignal }): AsyncIterable<LogRecord> {
    const { signal } = options;
    if (signal.aborted) return;
    const messages = await this.open(options);
    const stop = () => void messages.stop();
    // The signal may have fired while the consumer was being created; then no event will come.
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const message of messages) yield toRecord(message);
    } finally {
      signal.removeEventListener("abort", stop);
      stop();
    }
  }

  async lastSeq(): Promise<number> {
    return (await this.end())?.seq ?? 0;
  }

  /** The last entry of the stream, or of one subject (pattern); undefined when there is none. */
  private async end(subject?: string): Promise<LogEnd | undefined> {
    if (!subject || subject === eventSubjectsAll) {
      const { state } = await this.jsm.streams.info(this.streamName);
      return state.last_seq === 0 ? undefined : { seq: state.last_seq, storedAt: Date.parse(state.last_ts) };
    }
    try {
      const message = await this.jsm.streams.getMessage(this.streamName, { last_by_subj: subject });
      return message ? { seq: message.seq, storedAt: message.time.getTime() } : undefined;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return undefined;
      throw error;
    }
  }

  /** An ordered consumer's messages from the given point; the caller stops it. */
  private async open(options: ReadOptions): Promise<ConsumerMessages> {
    const consumer = await this.js.consumers.get(this.streamName, orderedOptions(options));
    return await consumer.consume({ max_messages: limits.consumerBatchMessages });
  }
}

function orderedOptions(options: ReadOptions): Partial<OrderedConsumerOptions> {
  const filter = { filter_subjects: options.subject ?? eventSubjectsAll };
  if (options.since !== undefined) {
    return {
      ...filter,
      deliver_policy: DeliverPolicy.StartTime,
      opt_start_time: new Date(options.since).toISOString(),
    };
  }
  if ((options.fromSeq ?? 1) > 1) {
    return { ...filter, deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: options.fromSeq };
  }
  return { ...filter, deliver_policy: DeliverPolicy.All };
}

function toRecord(message: JsMsg): LogRecord {
  // Built field by field rather than spread: this runs for every entry read.
  const { seq, subject } = message;
  const storedAt = message.time.getTime();
  try {
    return { seq, subject, storedAt, ok: true, event: decodeEvent(message.data) };
  } catch (error) {
    if (error instanceof EventDecodeError) return { seq, subject, storedAt, ok: false, error };
    throw error;
  }
}

function appendError(error: unknown, subject: string, expected: number | undefined): Error {
  if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence) {
    return new ConcurrencyError(subject, expected ?? 0, { cause: error });
  }
  if (error instanceof NatsTimeoutError) {
    return new TimeoutError(`append to ${subject} was not acknowledged within ${limits.appendAckTimeoutMs} ms`, {
      cause: error,
    });
  }
  return new UnavailableError(`append to ${subject} failed: ${(error as Error).message}`, { cause: error });
}
