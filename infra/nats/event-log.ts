/**
 * The event log on JetStream. Appends carry the event id as Nats-Msg-Id (a retried append is
 * stored once) and, when deciding against an aggregate, its expected last subject sequence
 * (a concurrent writer makes the append fail with a ConcurrencyError instead of
 * interleaving). Every entry read comes out either decoded or with the typed reason it
 * could not be, so one bad message never stops a reader.
 */
import { headers, nanos, RequestError, TimeoutError as NatsTimeoutError } from "@nats-io/nats-core";
import {
  AckPolicy,
  type Consumer,
  type ConsumerConfig,
  type ConsumerMessages,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JetStreamPublishOptions,
  type JsMsg,
  type OrderedConsumerOptions,
  type PubAck,
} from "@nats-io/jetstream";
import {
  ConcurrencyError,
  encodeEvent,
  eventSubjectsAll,
  limits,
  TimeoutError,
  UnavailableError,
  ValidationError,
  type VeilEvent,
} from "../../events/mod.ts";
import type { AppendOptions, EventLog, LogRecord, ReadOptions, ReplayOptions } from "../../actors/ports.ts";
import { decodeRecord } from "../../actors/log-record.ts";
import { eventStreamName } from "./streams.ts";

export class NatsEventLog implements EventLog {
  constructor(
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly streamName = eventStreamName,
  ) {}

  async append(subject: string, events: readonly VeilEvent[], options: AppendOptions = {}): Promise<number[]> {
    if (events.length > limits.appendEventsMax) {
      throw new ValidationError(`an append takes at most ${limits.appendEventsMax} events, got ${events.length}`);
    }
    // JetStream 2.9 has no atomic batch: a decision made against an expected sequence must be
    // one event, or a concurrent writer could leave half of it in the log.
    if (options.expectedSubjectSeq !== undefined && events.length > 1) {
      throw new Error("programmer error: an append with an expected subject sequence takes exactly one event");
    }
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
      const ack = await this.#publish(
        subject,
        payloads[index]!,
        expected === undefined ? publishOptions : { ...publishOptions, expect: { lastSubjectSequence: expected } },
        expected,
      );
      seqs.push(ack.seq);
      if (expected !== undefined) expected = ack.seq;
    }
    return seqs;
  }

  /**
   * One publish, retried while the broker cannot answer for a moment (a stream leader lost
   * with its node, a reconnect to another node): with the same Nats-Msg-Id, so a retry of
   * a publish that did land is acknowledged as the duplicate it is (the broker checks ids
   * before the expected sequence), and with the same expected sequence, so a race lost
   * meanwhile is still a conflict. Past the retry window the caller gets a retryable error.
   */
  async #publish(
    subject: string,
    payload: Uint8Array,
    options: Partial<JetStreamPublishOptions>,
    expected: number | undefined,
  ): Promise<PubAck> {
    const deadline = Date.now() + limits.appendRetryWindowMs;
    for (let attempt = 0;; attempt++) {
      try {
        return await this.js.publish(subject, payload, options);
      } catch (error) {
        if (!momentary(error) || Date.now() + limits.appendRetryDelayMaxMs >= deadline) {
          throw appendError(error, subject, expected);
        }
        await new Promise((resolve) => setTimeout(resolve, Math.min(limits.appendRetryDelayMaxMs, 100 * 2 ** attempt)));
      }
    }
  }

  async readAggregate(subject: string): Promise<{ records: LogRecord[]; lastSubjectSeq: number }> {
    const records: LogRecord[] = [];
    for await (const record of this.replay({ subject })) {
      if (records.length === limits.aggregateEventsMax) {
        throw new ValidationError(`${subject} holds more than ${limits.aggregateEventsMax} events; read it in ranges`);
      }
      records.push(record);
    }
    return { records, lastSubjectSeq: records.at(-1)?.seq ?? 0 };
  }

  async readLast(subject: string): Promise<LogRecord | undefined> {
    try {
      const message = await this.jsm.streams.getMessage(this.streamName, { last_by_subj: subject });
      return message ? decodeRecord(message.seq, message.subject, message.time.getTime(), message.data) : undefined;
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return undefined;
      throw error;
    }
  }

  /**
   * Reads through a consumer of its own, whose creation reply says exactly how many stored
   * entries match: the replay ends after those, however deletes or purges thinned the range,
   * and entries appended meanwhile are left to `follow`.
   */
  async *replay(options: ReplayOptions = {}): AsyncIterable<LogRecord> {
    if ((options.fromSeq ?? 1) > (options.untilSeq ?? Number.MAX_SAFE_INTEGER)) return;
    const created = await this.jsm.consumers.add(this.streamName, {
      ...startOptions(options),
      ack_policy: AckPolicy.None,
      mem_storage: true,
      num_replicas: 1,
      inactive_threshold: nanos(limits.replayConsumerIdleMs),
    });
    const consumer = await this.js.consumers.get(this.streamName, created.name);
    let remaining = created.num_pending;
    if (remaining === 0) {
      await consumer.delete().catch(() => {});
      return;
    }
    const messages = await consumer.consume({ max_messages: limits.consumerBatchMessages });
    try {
      for await (const message of messages) {
        const record = toRecord(message);
        if (options.untilSeq !== undefined && record.seq > options.untilSeq) return;
        if (options.untilTime !== undefined && record.storedAt > options.untilTime) return;
        yield record;
        remaining--;
        if (remaining === 0 || record.seq === options.untilSeq) return;
      }
    } finally {
      await close(consumer, messages);
    }
  }

  /** Reads through an ordered consumer, which recovers from gaps and reconnects on its own. */
  async *follow(options: ReadOptions & { readonly signal: AbortSignal }): AsyncIterable<LogRecord> {
    const { signal } = options;
    if (signal.aborted) return;
    let consumer: Consumer;
    let messages: ConsumerMessages;
    try {
      consumer = await this.js.consumers.get(this.streamName, orderedOptions(options));
      messages = await consumer.consume({
        max_messages: limits.consumerBatchMessages,
        expires: limits.followPullExpiresMs,
        idle_heartbeat: limits.followHeartbeatMs,
      });
    } catch (error) {
      // A broker cluster electing, or the node reached cut off: the follower may try again.
      if (!momentary(error)) throw error;
      throw new UnavailableError(`cannot follow the log now: ${(error as Error).message}`, { cause: error });
    }
    const stop = () => void messages.stop();
    // The signal may have fired while the consumer was being created; then no event will come.
    if (signal.aborted) stop();
    else signal.addEventListener("abort", stop, { once: true });
    try {
      for await (const message of messages) yield toRecord(message);
    } finally {
      signal.removeEventListener("abort", stop);
      await close(consumer, messages);
    }
  }

  async lastSeq(): Promise<number> {
    return (await this.jsm.streams.info(this.streamName)).state.last_seq;
  }

  async identity(): Promise<string> {
    const { config, created } = await this.jsm.streams.info(this.streamName);
    return `${config.name}@${created}`;
  }
}

/** Stops the messages and deletes the consumer, so readers leave nothing behind on the server. */
async function close(consumer: Consumer, messages: ConsumerMessages): Promise<void> {
  await messages.close();
  await consumer.delete().catch(() => {});
}

/** Where a read starts and what it matches, as consumer settings. */
function startOptions(options: ReadOptions): Partial<ConsumerConfig> {
  const filter = { filter_subject: options.subject ?? eventSubjectsAll };
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

function orderedOptions(options: ReadOptions): Partial<OrderedConsumerOptions> {
  const { filter_subject, deliver_policy, opt_start_seq, opt_start_time } = startOptions(options);
  return { filter_subjects: filter_subject, deliver_policy, opt_start_seq, opt_start_time };
}

function toRecord(message: JsMsg): LogRecord {
  return decodeRecord(message.seq, message.subject, message.time.getTime(), message.data);
}

/** The broker could not answer for now: no stream leader, no responder, no acknowledgement yet. */
function momentary(error: unknown): boolean {
  if (error instanceof NatsTimeoutError) return true;
  // What nats.js makes of "no responders" on a publish: nothing serves the stream just now.
  if ((error as Error).name === "JetStreamNotEnabled") return true;
  if (error instanceof RequestError && error.isNoResponders()) return true;
  if (error instanceof JetStreamApiError) return error.status === 503;
  return false;
}

function appendError(error: unknown, subject: string, expected: number | undefined): Error {
  if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamWrongLastSequence) {
    return new ConcurrencyError(subject, expected ?? 0, { cause: error });
  }
  if (error instanceof NatsTimeoutError) {
    return new TimeoutError(`append to ${subject} was not acknowledged within ${limits.appendRetryWindowMs} ms`, {
      cause: error,
    });
  }
  return new UnavailableError(`append to ${subject} failed: ${(error as Error).message}`, { cause: error });
}
