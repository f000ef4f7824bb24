import { describe, expect, it } from "vitest";
import { terminalSafe } from "../../infra/cli/format.ts";

describe("text shown on a terminal", () => {
  it("loses what could move the cursor, recolour, retitle or reorder the screen, and keeps the rest", () => {
    const hostile = "photo\x1b[2J\x1b]0;owned\x07.png\r\u202egnp.exe\u200b \x9b31m tab\there";
    expect(terminalSafe(hostile)).toBe("photo[2J]0;owned.pnggnp.exe 31m tab\there");
    expect(terminalSafe("ünïcødé 名前 photo.png\nsecond line")).toBe("ünïcødé 名前 photo.png\nsecond line");
  });
});
