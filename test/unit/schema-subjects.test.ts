import { describe, expect, it } from "vitest";
import {
  commandSubject,
  eventSubject,
  integer,
  leaderCommandSubject,
  object,
  oneOf,
  optional,
  readReply,
  storeSubject,
  storeSubjectsOf,
  string,
  ValidationError,
} from "../../events/mod.ts";

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

describe("the wire protocol", () => {
  it("builds command, leader and storage subjects, and refuses wildcards in any of their tokens", () => {
    expect(commandSubject("user.login")).toBe("veil.cmd.user.login");
    expect(leaderCommandSubject("cluster.place")).toBe("veil.lead.cluster.place");
    expect(storeSubject("store-1", "put")).toBe("veil.store.store-1.put");
    expect(storeSubjectsOf("store-1")).toBe("veil.store.store-1.*");
    for (const name of ["user.*", "user.>", "user..login", "user login"]) {
      expect(() => commandSubject(name), name).toThrow(ValidationError);
    }
    expect(() => storeSubject("*", "get")).toThrow(ValidationError);
  });

  it("reads a reply's value or its typed error, and calls anything else malformed", () => {
    expect(readReply({ ok: true, value: 7 }, "s")).toBe(7);
    expect(() => readReply({ ok: false, error: { code: "not-found", message: "no such file" } }, "s")).toThrow(
      expect.objectContaining({ code: "not-found", message: "no such file" }),
    );
    for (const malformed of [null, "ok", { ok: false, error: { code: 5 } }, { ok: "yes" }]) {
      expect(() => readReply(malformed, "veil.cmd.x"), JSON.stringify(malformed)).toThrow(/malformed reply/);
    }
  });
});
