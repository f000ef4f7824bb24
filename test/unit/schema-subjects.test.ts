import { describe, expect, it } from "vitest";
import { eventSubject, integer, object, oneOf, optional, string, ValidationError } from "../../events/mod.ts";

describe("schemas", () => {
  const shape = object({
    name: string({ lengthMin: 1, lengthMax: 5 }),
    count: integer({ min: 0, max: 9 }),
    kind: oneOf(["a", "b"]),
    note: optional(string({ lengthMax: 3 })),
  });

  it("accepts a valid value and drops fields it does not know", () => {
    expect(shape.parse({ name: "x", count: 3, kind: "a", sneaky: 1 })).toEqual({ name: "x", count: 3, kind: "a" });
  });

  it.each([
    [{ name: "", count: 1, kind: "a" }, /name: expected 1..5 characters/],
    [{ name: "x", count: 1.5, kind: "a" }, /count: expected an integer/],
    [{ name: "x", count: 10, kind: "a" }, /count: expected an integer in 0..9/],
    [{ name: "x", count: 1, kind: "c" }, /kind: expected one of a, b/],
    [{ name: "x", count: 1, kind: "a", note: "long" }, /note/],
    [[1, 2], /expected a map, got array/],
    [null, /expected a map, got null/],
  ])("rejects %j naming the field", (value, message) => {
    expect(() => shape.parse(value)).toThrow(ValidationError);
    expect(() => shape.parse(value)).toThrow(message);
  });
});

describe("subjects", () => {
  it("builds event subjects", () => {
    expect(eventSubject("node", "storage-2")).toBe("veil.evt.node.storage-2");
  });

  it.each(["", "a.b", "*", ">", "has space", "x".repeat(129)])("refuses the token %j", (token) => {
    expect(() => eventSubject("node", token)).toThrow(ValidationError);
  });
});
