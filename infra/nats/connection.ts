/** Connecting to NATS with a bounded wait and a clear message when nothing answers. */
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { limits, UnavailableError } from "../../events/mod.ts";

export async function connectNats(
  url: string,
  options: { name: string; timeoutMs?: number },
): Promise<NatsConnection> {
  try {
    return await connect({
      servers: url,
      name: options.name,
      timeout: options.timeoutMs ?? limits.connectTimeoutMs,
      // Long-running nodes ride out broker restarts; the first connection must succeed.
      maxReconnectAttempts: -1,
    });
  } catch (cause) {
    throw new UnavailableError(`cannot reach NATS at ${url}: ${(cause as Error).message}`, { cause });
  }
}
