/** The listing audit's walk: recorded hashes the listing skipped, page by page, bounded. */
import { describe, expect, it } from "vitest";
import { ListingAudit } from "../../actors/server/vault/audit.ts";

const page = (...hashes: string[]) => hashes.map((hash) => ({ hash }));

describe("a listing audit", () => {
  it("keeps the recorded hashes the listing skipped, before, between and after its pages", () => {
    const audit = new ListingAudit(["a", "b", "c", "d", "f"], 10);
    audit.page(page("b", "c"));
    audit.page(page("e"));
    expect(audit.end()).toEqual(["a", "d", "f"]);
  });

  it("finds nothing missing when everything recorded is listed (and more)", () => {
    const audit = new ListingAudit(["b", "d"], 10);
    audit.page(page("a", "b", "c", "d", "e"));
    expect(audit.end()).toEqual([]);
  });

  it("keeps at most its bound", () => {
    const audit = new ListingAudit(["a", "b", "c", "d"], 2);
    expect(audit.end()).toEqual(["a", "b"]);
  });
});
