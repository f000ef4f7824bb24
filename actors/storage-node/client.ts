/** The caller's side of a storage node: one request, its reply checked and turned into a value or a typed error. */
import type { Bus } from "../ports.ts";
import { bytes, limits, readReply, type StoreOperation, storeSubject } from "../../events/mod.ts";

export async function storeRequest(
  bus: Bus,
  node: string,
  operation: StoreOperation,
  data: Record<string, unknown> = {},
): Promise<unknown> {
  const subject = storeSubject(node, operation);
  return readReply(await bus.request(subject, data, { timeoutMs: limits.storeRequestTimeoutMs }), subject);
}

/** What a node answers to a get, checked before it is used: bytes, at most a chunk. */
export const chunkReply = bytes({ lengthMin: 1, lengthMax: limits.chunkBytes });
