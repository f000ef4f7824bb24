/** Connecting to NATS with a bounded wait and a clear message when nothing answers. */
import { jetstream, type JetStreamClient, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { limits, UnavailableError } from "../../events/mod.ts";
import { displayUrl } from "../log.ts";

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
    throw new UnavailableError(`cannot reach NATS at ${displayUrl(url)}: ${(cause as Error).message}`, { cause });
  }
}

/** JetStream on a connection; a broker started without `-js` is a clear error, not a mystery. */
export async function openJetStream(
  nc: NatsConnection,
  url: string,
): Promise<{ js: JetStreamClient; jsm: JetStreamManager }> {
  try {
    return { js: jetstream(nc), jsm: await jetstreamManager(nc) };
  } catch (cause) {
    if ((cause as Error).name === "JetStreamNotEnabled") {
      throw new UnavailableError(
        `NATS at ${displayUrl(url)} has no JetStream; start nats-server with -js (JetStream)`,
        { cause },
      );
    }
    throw cause;
  }
}
