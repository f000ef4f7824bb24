import { describe, expect, it } from "vitest";
import { seeds } from "./cluster.ts";
import { withSystem } from "./system.ts";

const file = "test/sim/vault.test.ts";

describe.each(seeds(3))("the vault in the simulator, seed %i", (seed) => {
  it("stores a file on the storage nodes and gives it back", async () => {
    await withSystem(seed, file, async (system) => {
      for (const node of ["s1", "s2", "s3"]) system.startServer(node);
      for (const node of ["d1", "d2", "d3", "d4"]) system.startStorageNode(node);
      await system.until("a leader", 10_000, () => system.leaders().length === 1);
      const alice = await system.complete("alice joins", system.joinPeer("alice"));
      const bytes = system.random.bytes?.(10) ?? new Uint8Array(0);
      void bytes;
      const content = Uint8Array.from({ length: 3_000 }, (_, index) => (index * 7 + seed) % 251);
      const stored = await system.complete("upload", alice.upload("holiday.jpg", content, 2));
      expect(stored.bytes).toBe(3_000);
      const back = await system.complete("download", alice.download(stored.image));
      expect(back).toEqual(content);
    });
  }, 60_000);
});
