/**
 * The client's side of sealed commands, against a cluster stand-in that opens them with the
 * cluster's key on its own clock: the client seals with the cluster's time, learns it again
 * when its own clock has jumped, and never follows a cluster whose key changed under a pin.
 */
import { describe, expect, it } from "vitest";
import { CommandClient } from "../../actors/peer/commands.ts";
import { CommandOpener, type KeyPair, newKeyPair, ReplayWindow } from "../../actors/crypto/mod.ts";
import type { Bus } from "../../actors/ports.ts";
import { clusterKeysCommand, failureReply, UnavailableError } from "../../events/mod.ts";
import { cryptoRandom } from "../../infra/random.ts";

const minute = 60_000;

/** A cluster of one server on its own clock; `answers` counts the commands it carried out. */
function cluster(now: () => number, keys: KeyPair = newKeyPair(cryptoRandom)) {
  const opener = new CommandOpener(keys.privateKey, new ReplayWindow());
  const state = { keys, answers: 0, keyRequests: 0, down: false };
  const bus: Bus = {
    publish: () => {},
    subscribe: () => ({ unsubscribe: () => {} }),
    request: (subject, data) => {
      if (state.down) return Promise.reject(new UnavailableError(`nobody serves ${subject}`));
      if (subject === `veil.cmd.${clusterKeysCommand}`) {
        state.keyRequests++;
        const reply = {
          sealingKey: state.keys.publicKey,
          fingerprint: new Uint8Array(16),
          ticketKey: new Uint8Array(32),
          now: now(),
        };
        return Promise.resolve({ ok: true, value: reply });
      }
      try {
        const opened = opener.open(subject.slice("veil.cmd.".length), data, { now: now(), random: cryptoRandom });
        state.answers++;
        return Promise.resolve(opened.sealReply({ ok: true, value: { echo: opened.data } }));
      } catch (error) {
        const refused = error as { sealReply?: (reply: unknown) => unknown; reason?: Error };
        return Promise.resolve(
          refused.sealReply ? refused.sealReply(failureReply(refused.reason)) : failureReply(error),
        );
      }
    },
  };
  return { bus, state };
}

describe("the command client", () => {
  it("seals with the cluster's time, learned with the keys, not its own clock's", async () => {
    let clientNow = 1_800_000_000_000;
    const { bus, state } = cluster(() => clientNow + 30 * minute);
    const client = new CommandClient(bus, { now: () => clientNow }, cryptoRandom);
    expect(await client.send("user.whoami", { user: "ada" })).toEqual({ echo: { user: "ada" } });
    clientNow += 1_000;
    expect(await client.send("user.whoami", { user: "bob" })).toEqual({ echo: { user: "bob" } });
    expect([state.answers, state.keyRequests]).toEqual([2, 1]);
  });

  it("learns the time again, once, when its clock has jumped, and the command goes through", async () => {
    let clientNow = 1_800_000_000_000;
    const { bus, state } = cluster(() => 1_800_000_000_000);
    const client = new CommandClient(bus, { now: () => clientNow }, cryptoRandom);
    await client.send("user.whoami", {});
    clientNow += 20 * minute;
    expect(await client.send("user.whoami", { after: "the jump" })).toEqual({ echo: { after: "the jump" } });
    expect([state.answers, state.keyRequests]).toEqual([2, 2]);
  });

  it("keeps the refusal when the cluster answering has another key than the one pinned", async () => {
    let clientNow = 1_800_000_000_000;
    const { bus, state } = cluster(() => 1_800_000_000_000);
    const client = new CommandClient(bus, { now: () => clientNow }, cryptoRandom);
    client.useClusterKeys({ ...(await client.fetchClusterKeys()), clockOffsetMs: 0 });
    state.keys = newKeyPair(cryptoRandom);
    clientNow += 20 * minute;
    await expect(client.send("user.whoami", {})).rejects.toThrow(/sealed at a time more than/);
    expect(state.answers).toBe(0);
  });

  it("forgets a failed fetch of the keys, so the next command asks again", async () => {
    const { bus, state } = cluster(() => 1_800_000_000_000);
    const client = new CommandClient(bus, { now: () => 1_800_000_000_000 }, cryptoRandom);
    state.down = true;
    await expect(client.send("user.whoami", {})).rejects.toThrow(/nobody serves/);
    state.down = false;
    expect(await client.send("user.whoami", {})).toEqual({ echo: {} });
    expect(state.keyRequests).toBe(1);
  });
});
