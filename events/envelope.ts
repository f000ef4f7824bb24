/**
 * The envelope every event travels in: a plain msgpack map that any msgpack tool can read.
 * `at` and `id` are passed in by the caller, who takes them from an injected clock and id
 * source: nothing in events/ reads the wall clock or a random source.
 */
import type { Infer, Schema } from "./schema.ts";

export interface Envelope<Type extends string = string, Data = unknown> {
  /** Past tense, e.g. "NodeJoined". */
  readonly type: Type;
  /** Version of this type's data shape; old versions are upcast on read. */
  readonly v: number;
  /** Unique event id; also the Nats-Msg-Id, so a retried append is stored once. */
  readonly id: string;
  /** Epoch milliseconds, from the appender's clock. */
  readonly at: number;
  /** The actor that decided this event. */
  readonly by: string;
  readonly data: Data;
}

/** How one event type is read and written: its current version, data schema and upcasters. */
export interface EventDefinition<Data = unknown> {
  readonly version: number;
  readonly data: Schema<Data>;
  /**
   * `upcasters[n]` turns data written at version n into version n + 1. Reading an event at
   * version n applies n, n + 1, ... until the current version, then validates.
   */
  readonly upcasters?: Readonly<Record<number, (data: unknown) => unknown>>;
}

export type EventRegistry = Readonly<Record<string, EventDefinition>>;

/** The discriminated union of envelopes a registry describes. */
export type EventsOf<R extends EventRegistry> = {
  [Type in keyof R & string]: Envelope<Type, Infer<R[Type]["data"]>>;
}[keyof R & string];

/** Identity at run time; keeps each definition's literal types for inference. */
export function defineEvents<const R extends Record<string, EventDefinition<any>>>(registry: R): R {
  return registry;
}

export interface EventOrigin {
  readonly id: string;
  readonly at: number;
  readonly by: string;
}

export function createEvent<R extends EventRegistry, Type extends keyof R & string>(
  registry: R,
  type: Type,
  data: Infer<R[Type]["data"]>,
  origin: EventOrigin,
): Envelope<Type, Infer<R[Type]["data"]>> {
  const definition = registry[type];
  if (!definition) throw new Error(`programmer error: unknown event type ${type}`);
  return { type, v: definition.version, id: origin.id, at: origin.at, by: origin.by, data };
}
