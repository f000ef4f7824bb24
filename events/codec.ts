/**
 * The msgpack codec. Standard MessagePack only (no msgpackr records, undefined as nil), so
 * any msgpack decoder reads the log. Decoding trusts nothing: size, shape, type, version
 * and data are checked in that order, and each failure is an EventDecodeError with its own
 * code, which consumers log and skip.
 */
import { Packr } from "msgpackr";
import type { Envelope, EventRegistry, EventsOf } from "./envelope.ts";
import { EventDecodeError, ValidationError } from "./errors.ts";
import { limits } from "./limits.ts";
import { FieldError, integer, object, type Schema, string } from "./schema.ts";
import { type VeilEvent, vocabulary } from "./vocabulary.ts";

const packr = new Packr({ useRecords: false, mapsAsObjects: true, encodeUndefinedAsNil: true });

/**
 * A plain Uint8Array over the same bytes. msgpackr hands out Node Buffers on Node and decodes
 * byte strings as views of its input's type: bytes that went through a Buffer would come
 * back as Buffers, whose `slice` shares memory where a Uint8Array's copies, and which differ
 * from the same state rebuilt from the log. Every runtime sees plain Uint8Arrays instead.
 */
const plainBytes = (bytes: Uint8Array) =>
  bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Any value as standard msgpack (bus messages, snapshots). */
export function encodeMessage(value: unknown): Uint8Array {
  return plainBytes(packr.pack(value));
}

/** Any msgpack payload up to `bytesMax`; malformed or oversized input is an EventDecodeError. */
export function decodeMessage(bytes: Uint8Array, bytesMax: number = limits.eventBytesMax): unknown {
  if (bytes.byteLength > bytesMax) {
    throw new EventDecodeError(
      "event-too-large",
      `payload of ${bytes.byteLength} bytes exceeds the ${bytesMax}-byte limit`,
    );
  }
  if (bytes.byteLength === 0) throw new EventDecodeError("event-malformed", "empty payload");
  try {
    return packr.unpack(plainBytes(bytes));
  } catch (cause) {
    throw new EventDecodeError(
      "event-malformed",
      `not valid msgpack: ${(cause as Error).message}`,
      { cause },
    );
  }
}

const envelopeShape = object({
  type: string({ lengthMin: 1, lengthMax: limits.eventTypeLengthMax, pattern: /^[A-Z][A-Za-z0-9]*$/ }),
  v: integer({ min: 1 }),
  id: string({ lengthMin: 1, lengthMax: limits.actorIdLengthMax }),
  at: integer({ min: 0 }),
  by: string({ lengthMin: 1, lengthMax: limits.actorIdLengthMax }),
});

/** Parses with a schema, turning a validation failure into the decode error a reader expects. */
const envelopeFailure = { code: "event-malformed", what: "envelope" } as const;

function check<T>(
  schema: Schema<T>,
  value: unknown,
  failure: { code: "event-malformed" | "event-invalid-data"; what: string; field?: string },
): T {
  try {
    return schema.parse(value);
  } catch (cause) {
    if (!(cause instanceof ValidationError)) throw cause;
    if (failure.field && cause instanceof FieldError) cause.at(failure.field);
    throw new EventDecodeError(failure.code, `${failure.what}: ${cause.message}`, { cause });
  }
}

/** Checks an envelope against the registry and upcasts its data to the current version. */
export function validateEvent(value: unknown): VeilEvent;
export function validateEvent<R extends EventRegistry>(value: unknown, registry: R): EventsOf<R>;
export function validateEvent(value: unknown, registry: EventRegistry = vocabulary): Envelope {
  const head = check(envelopeShape, value, envelopeFailure);
  const definition = Object.hasOwn(registry, head.type) ? registry[head.type] : undefined;
  if (!definition) throw new EventDecodeError("event-unknown-type", `unknown event type ${head.type}`);
  if (head.v > definition.version) {
    throw new EventDecodeError(
      "event-newer-version",
      `${head.type} v${head.v} is newer than this reader's v${definition.version}; upgrade veil`,
    );
  }
  let data = (value as { data?: unknown }).data;
  for (let version = head.v; version < definition.version; version++) {
    const upcast = definition.upcasters?.[version];
    if (!upcast) {
      throw new EventDecodeError(
        "event-invalid-data",
        `${head.type} v${version} cannot be read: no upcaster to v${version + 1}`,
      );
    }
    try {
      data = upcast(data);
    } catch (cause) {
      // Old data an upcaster cannot handle is bad input, not a reason to stop a reader.
      throw new EventDecodeError(
        "event-invalid-data",
        `${head.type} v${version} could not be upcast: ${(cause as Error).message}`,
        { cause },
      );
    }
  }
  const parsed = check(definition.data, data, { code: "event-invalid-data", what: head.type, field: "data" });
  // Built field by field rather than spread: this runs for every event read or written.
  return { type: head.type, v: definition.version, id: head.id, at: head.at, by: head.by, data: parsed };
}

export function decodeEvent(bytes: Uint8Array): VeilEvent;
export function decodeEvent<R extends EventRegistry>(bytes: Uint8Array, registry: R): EventsOf<R>;
export function decodeEvent(bytes: Uint8Array, registry: EventRegistry = vocabulary): Envelope {
  return validateEvent(decodeMessage(bytes), registry);
}

/**
 * Encodes an event after validating it exactly as a reader would, so nothing invalid,
 * unvetted or oversized is ever written.
 */
export function encodeEvent(event: VeilEvent | Envelope, registry: EventRegistry = vocabulary): Uint8Array {
  // What is written is what validation returned: fields no schema names never reach the log.
  const bytes = packr.pack(validateEvent(event, registry));
  if (bytes.byteLength > limits.eventBytesMax) {
    throw new EventDecodeError(
      "event-too-large",
      `${event.type} encodes to ${bytes.byteLength} bytes, over the ${limits.eventBytesMax}-byte limit`,
    );
  }
  return bytes;
}

export type { VeilEvent };
