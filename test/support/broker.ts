/** Looking through everything a broker holds, as someone who stole its store would. */
import type { TestNats } from "./nats.ts";

export interface StoredMessage {
  readonly stream: string;
  readonly seq: number;
  readonly subject: string;
  /** The event type its `Veil-Type` header names, if any. */
  readonly type?: string;
  /** Headers and payload, as they sit in the store. */
  readonly bytes: Uint8Array;
}

/** Every stored message of every stream on the broker (events, cluster traffic, KV snapshots), headers included. */
export async function everyStoredMessage(nats: TestNats): Promise<StoredMessage[]> {
  const all: StoredMessage[] = [];
  for await (const info of nats.jsm.streams.list()) {
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const message = await nats.jsm.streams.getMessage(info.config.name, { seq }).catch(() => null);
      if (!message) continue;
      const headers = new TextEncoder().encode(message.header?.toString() ?? "");
      all.push({
        stream: info.config.name,
        seq,
        subject: message.subject,
        ...(message.header?.get("Veil-Type") ? { type: message.header.get("Veil-Type") } : {}),
        bytes: new Uint8Array([...headers, ...message.data]),
      });
    }
  }
  return all;
}

export function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let index = 0; index + needle.length <= haystack.length; index++) {
    for (let offset = 0; offset < needle.length; offset++) {
      if (haystack[index + offset] !== needle[offset]) continue outer;
    }
    return true;
  }
  return false;
}
