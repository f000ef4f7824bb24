import { describe, expect, it } from "vitest";
import { BusyError, IntegrityError, UnavailableError } from "../../events/mod.ts";
import { startCryptoActor, startStegoActor, startWorkerActor } from "../../infra/workers/actors.ts";

const testWorker = new URL("../support/test-worker.ts", import.meta.url);
const brokenWorker = new URL("../support/broken-worker.ts", import.meta.url);

describe("worker actors", () => {
  it("seal, embed, extract and open through the crypto and stego actors", async () => {
    const crypto = startCryptoActor({ size: 1 });
    const stego = startStegoActor({ size: 1 });
    try {
      const key = new Uint8Array(32).fill(4);
      const sealed = await crypto.seal(key, new Uint8Array(16), new TextEncoder().encode("a picture, say"));
      const { png, psnr } = await stego.embed({ payload: sealed, stegoKey: key, bits: 2 });
      expect(psnr).toBeGreaterThan(40);
      expect((await stego.capacity(png, 2)).bytes).toBeGreaterThanOrEqual(sealed.byteLength);
      const opened = await crypto.open(key, await stego.extract(png, key));
      expect(new TextDecoder().decode(opened.plaintext)).toBe("a picture, say");
      // Typed errors cross the thread boundary intact.
      await expect(crypto.open(new Uint8Array(32), sealed)).rejects.toBeInstanceOf(Error);
      await expect(crypto.open(new Uint8Array(32), sealed)).rejects.toMatchObject({ code: "integrity" });
      await expect(stego.extract(png, new Uint8Array(32))).rejects.toMatchObject({ code: "integrity" });
      expect(IntegrityError).toBeDefined();
    } finally {
      await Promise.all([crypto.stop(), stego.stop()]);
    }
  });

  it("refuses work beyond its bound at once with a busy error, and serves the admitted work", async () => {
    const actor = startWorkerActor({ name: "test", module: testWorker, size: 1, admittedMax: 2 });
    try {
      const first = actor.request("work", { ms: 200 });
      const second = actor.request("work", { ms: 1 });
      await expect(actor.request("echo", "third")).rejects.toBeInstanceOf(BusyError);
      expect(await Promise.all([first, second])).toEqual([200, 1]);
      expect(await actor.request("echo", "after")).toBe("after");
    } finally {
      await actor.stop();
    }
  });

  it("runs urgent work ahead of the work waiting for a worker", async () => {
    const actor = startWorkerActor({ name: "test", module: testWorker, size: 1 });
    try {
      const settled: string[] = [];
      const run = (name: string, urgent = false) =>
        actor.request("echo", name, [], { urgent }).then((value) => void settled.push(value as string));
      await Promise.all([run("first"), run("waiting-1"), run("waiting-2"), run("urgent", true)]);
      expect(settled.indexOf("urgent")).toBeLessThan(settled.indexOf("waiting-1"));
      expect(settled.slice(-2)).toEqual(["waiting-1", "waiting-2"]);
    } finally {
      await actor.stop();
    }
  });

  it("replaces a worker that dies, failing only its own task", async () => {
    const actor = startWorkerActor({ name: "test", module: testWorker, size: 1 });
    try {
      await expect(actor.request("die", {})).rejects.toBeInstanceOf(UnavailableError);
      expect(await actor.request("echo", "still here")).toBe("still here");
    } finally {
      await actor.stop();
    }
  });

  it("fails work clearly, and stops, when its workers cannot even load", async () => {
    const actor = startWorkerActor({ name: "broken", module: brokenWorker, size: 2 });
    try {
      await expect(actor.request("echo", "anyone?")).rejects.toThrow(/could not start/);
    } finally {
      await actor.stop();
    }
  });

  it("finishes admitted work when stopped, then refuses more", async () => {
    const actor = startWorkerActor({ name: "test", module: testWorker, size: 2 });
    const working = actor.request("work", { ms: 100 });
    const stopped = actor.stop();
    await expect(actor.request("echo", "late")).rejects.toThrow(/stopping|stopped/);
    expect(await working).toBe(100);
    await stopped;
    await expect(actor.request("echo", "later")).rejects.toThrow(/stopped/);
  });
});
