import { Unpackr } from "msgpackr";
import { describe, expect, it } from "vitest";
import {
  decodeEvent,
  decodeMessage,
  defineEvents,
  encodeEvent,
  encodeMessage,
  EventDecodeError,
  integer,
  limits,
  object,
  string,
  validateEvent,
} from "../../events/mod.ts";
import { joined } from "../support/events.ts";

function decodeFailure(bytes: Uint8Array): string {
  try {
    decodeEvent(bytes);
  } catch (error) {
    expect(error).toBeInstanceOf(EventDecodeError);
    return (error as EventDecodeError).code;
  }
  throw new Error("expected a decode failure");
}

describe("event codec", () => {
  it("round-trips an event", () => {
    const event = joined("server-1");
    expect(decodeEvent(encodeEvent(event))).toEqual(event);
  });

  it("writes standard msgpack maps that a plain decoder reads without veil's help", () => {
    const event = joined("server-1");
    const plain = new Unpackr({ mapsAsObjects: true, useRecords: false }).unpack(encodeEvent(event));
    expect(plain).toEqual({ ...event });
    // A map header (fixmap, map16 or map32), not a msgpackr record extension.
    const first = encodeEvent(event)[0]!;
    expect((first & 0xf0) === 0x80 || first === 0xde || first === 0xdf).toBe(true);
  });

  it.each([
    ["empty bytes", new Uint8Array(), "event-malformed"],
    ["garbage", new TextEncoder().encode("not msgpack at all"), "event-malformed"],
    ["a truncated payload", encodeEvent(joined("server-1")).slice(0, 15), "event-malformed"],
    ["a number instead of a map", encodeMessage(42), "event-malformed"],
    [
      "a missing envelope field",
      encodeMessage({ type: "NodeJoined", v: 1, at: 1, by: "x", data: {} }),
      "event-malformed",
    ],
    ["an unknown type", encodeMessage({ ...joined("n"), type: "MoonLanded" }), "event-unknown-type"],
    ["a newer version", encodeMessage({ ...joined("n"), v: 2 }), "event-newer-version"],
    ["invalid data", encodeMessage({ ...joined("n"), data: { node: "a.b", role: "server" } }), "event-invalid-data"],
    ["an oversized payload", new Uint8Array(limits.eventBytesMax + 1), "event-too-large"],
  ])("rejects %s with a typed error", (_, bytes, code) => {
    expect(decodeFailure(bytes)).toBe(code);
  });

  it("hands out plain Uint8Arrays on every runtime, whatever the bytes came in", async () => {
    const { Buffer } = await import("node:buffer");
    const encoded = encodeMessage({ key: new Uint8Array([1, 2, 3]) });
    expect(encoded.constructor).toBe(Uint8Array);
    // Bytes that went through a Node Buffer (a file read, a socket) decode as a state rebuilt from the log does.
    for (const input of [encoded, Buffer.from(encoded)]) {
      const { key } = decodeMessage(input) as { key: Uint8Array };
      expect(key.constructor).toBe(Uint8Array);
      expect([...key]).toEqual([1, 2, 3]);
    }
  });

  it("refuses to encode an event a reader would reject", () => {
    expect(() => encodeEvent({ ...joined("n"), data: { node: "", role: "server" } })).toThrow(EventDecodeError);
    expect(() => encodeEvent({ ...joined("n"), type: "MoonLanded" } as never)).toThrow(/unknown event type/);
  });

  it("writes only what the schema names: an unvetted field never reaches the bytes", () => {
    const sneaky = { ...joined("n"), data: { node: "n", role: "server", password: "hunter2" } } as never;
    const bytes = encodeEvent(sneaky);
    expect(new TextDecoder().decode(bytes)).not.toContain("hunter2");
    expect(decodeEvent(bytes).data).toEqual({ node: "n", role: "server" });
  });

  it("refuses to encode an event over the size limit", () => {
    const registry = defineEvents({
      Blob: { version: 1, data: object({ text: string({ lengthMax: 2 * limits.eventBytesMax }) }) },
    });
    const huge = { type: "Blob", v: 1, id: "i", at: 1, by: "t", data: { text: "x".repeat(limits.eventBytesMax) } };
    expect(() => encodeEvent(huge, registry)).toThrow(/over the \d+-byte limit/);
  });
});

describe("upcasting", () => {
  // A type that gained a field in v2 and renamed one in v3: readers see only v3.
  const registry = defineEvents({
    SizeMeasured: {
      version: 3,
      data: object({ bytes: integer({ min: 0 }), unit: string({ lengthMax: 8 }) }),
      upcasters: {
        1: (data) => ({ ...(data as object), unit: "B" }),
        2: (data) => {
          const { size, ...rest } = data as { size: number };
          return { ...rest, bytes: size };
        },
      },
    },
  });
  const at = { id: "e-1", at: 1, by: "t" };

  it("turns a v1 event into the current shape at read", () => {
    const v1 = encodeMessage({ type: "SizeMeasured", v: 1, ...at, data: { size: 42 } });
    expect(decodeEvent(v1, registry)).toEqual({ type: "SizeMeasured", v: 3, ...at, data: { bytes: 42, unit: "B" } });
  });

  it("validates the upcast result like any other data", () => {
    expect(() => validateEvent({ type: "SizeMeasured", v: 2, ...at, data: { size: -1, unit: "B" } }, registry))
      .toThrow(EventDecodeError);
  });

  it("turns an upcaster that throws on odd old data into a typed decode error", () => {
    const v2 = encodeMessage({ type: "SizeMeasured", v: 2, ...at, data: null });
    expect(() => decodeEvent(v2, registry)).toThrow(EventDecodeError);
    expect(() => decodeEvent(v2, registry)).toThrow(/SizeMeasured v2 could not be upcast/);
  });

  it("names the missing step when no upcaster exists", () => {
    const partial = defineEvents({
      SizeMeasured: { ...registry.SizeMeasured, upcasters: { 2: registry.SizeMeasured.upcasters[2] } },
    });
    expect(() => validateEvent({ type: "SizeMeasured", v: 1, ...at, data: { size: 1 } }, partial)).toThrow(
      /no upcaster to v2/,
    );
  });
});
