import { describe, expect, it } from "vitest";
import { everyPage, pageOf, timeKey } from "../../events/mod.ts";

describe("pages of a listing", () => {
  const entries = Array.from({ length: 7 }, (_, index) => ({ id: `e${index}`, at: 1000 - index * 100 }));
  const keyOf = (entry: { id: string; at: number }) => `${timeKey(entry.at)}:${entry.id}`;

  it("orders by the key and says where the next page starts", () => {
    const first = pageOf(entries, keyOf, { limit: 3 });
    expect(first.items.map((entry) => entry.id)).toEqual(["e6", "e5", "e4"]);
    expect(first.next).toBe(keyOf(entries[4]!));
    const last = pageOf(entries, keyOf, { after: first.next, limit: 10 });
    expect(last.items.map((entry) => entry.id)).toEqual(["e3", "e2", "e1", "e0"]);
    expect(last.next).toBeUndefined();
  });

  it("orders times as numbers, not as text", () => {
    expect(timeKey(999) < timeKey(1000)).toBe(true);
  });

  it("reads every page once, and stops at its bound", async () => {
    const pages = await everyPage((after) => Promise.resolve(pageOf(entries, keyOf, { after, limit: 2 })));
    expect(pages.flatMap((page) => page.items.map((entry) => entry.id))).toEqual(
      ["e6", "e5", "e4", "e3", "e2", "e1", "e0"],
    );
    let asked = 0;
    const endless = await everyPage(() => Promise.resolve({ next: String(++asked) }), 5);
    expect(endless).toHaveLength(5);
    expect(asked).toBe(5);
  });
});
