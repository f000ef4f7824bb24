import { describe, expect, it } from "vitest";
import type { BusMessage } from "../../actors/ports.ts";
import { TimeoutError, UnavailableError } from "../../events/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { recordingLogger } from "../support/logger.ts";
import { useNatsServer } from "../support/nats.ts";

const nats = useNatsServer();

/** Resolves with the first `count` messages a subscription receives. */
function receive(subscribe: (handler: (message: BusMessage) => void) => void, count: number) {
  return new Promise<BusMessage[]>((resolve) => {
    const seen: BusMessage[] = [];
    subscribe((message) => {
      seen.push(message);
      if (seen.length === count) resolve(seen);
    });
  });
}

describe("NATS bus", () => {
  it("answers requests with msgpack bodies", async () => {
    const bus = natsBus(nats.nc, recordingLogger().logger);
    const subscription = bus.subscribe("veil.cmd.echo", (message) => message.respond({ echoed: message.data }));
    await nats.nc.flush();
    expect(await bus.request("veil.cmd.echo", { hello: [1, 2, 3] }, { timeoutMs: 2_000 })).toEqual({
      echoed: { hello: [1, 2, 3] },
    });
    subscription.unsubscribe();
  });

  it("spreads a queue group's messages over its members, each message to one", async () => {
    const bus = natsBus(nats.nc, recordingLogger().logger);
    const counts = { a: 0, b: 0 };
    const all = receive((handler) => {
      for (const member of ["a", "b"] as const) {
        bus.subscribe("veil.cmd.work", (message) => {
          counts[member]++;
          handler(message);
        }, { queue: "servers" });
      }
    }, 20);
    await nats.nc.flush();
    for (let index = 0; index < 20; index++) bus.publish("veil.cmd.work", { index });
    const messages = await all;
    expect(messages.map((message) => (message.data as { index: number }).index).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 20 }, (_, index) => index),
    );
    expect(counts.a + counts.b).toBe(20);
  });

  it("drops a malformed body with a warning and keeps delivering", async () => {
    const { logger, warnings } = recordingLogger();
    const bus = natsBus(nats.nc, logger);
    const next = receive((handler) => bus.subscribe("veil.cmd.mixed", handler), 1);
    await nats.nc.flush();
    nats.nc.publish("veil.cmd.mixed", new Uint8Array([0xc1, 0x00, 0x01]) /* 0xc1 is never valid msgpack */);
    bus.publish("veil.cmd.mixed", { fine: true });
    expect((await next)[0]!.data).toEqual({ fine: true });
    expect(warnings).toEqual(["dropped malformed message"]);
  });

  it("turns no responder and no answer into typed errors", async () => {
    const bus = natsBus(nats.nc, recordingLogger().logger);
    await expect(bus.request("veil.cmd.nobody", {}, { timeoutMs: 1_000 })).rejects.toBeInstanceOf(UnavailableError);
    const silent = bus.subscribe("veil.cmd.silent", () => {});
    await nats.nc.flush();
    await expect(bus.request("veil.cmd.silent", {}, { timeoutMs: 200 })).rejects.toBeInstanceOf(TimeoutError);
    silent.unsubscribe();
  });
});
