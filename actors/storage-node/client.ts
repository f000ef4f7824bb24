/** The caller's side of a storage node: one request, its reply checked and turned into a value or a typed error. */
import type { Bus } from "../ports.ts";
import {
  limits,
  readReply,
  type StoreOperation,
  storeReplies,
  type StoreReply,
  type StoreRequest,
  storeSubject,
} from "../../events/mod.ts";

export async function storeRequest<Operation extends StoreOperation>(
  bus: Bus,
  node: string,
  operation: Operation,
  data: StoreRequest<Operation>,
): Promise<StoreReply<Operation>> {
  const subject = storeSubject(node, operation);
  const value = readReply(await bus.request(subject, data, { timeoutMs: limits.storeRequestTimeoutMs }), subject);
  return storeReplies[operation].parse(value) as StoreReply<Operation>;
}
