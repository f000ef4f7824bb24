/** Connecting to NATS with a bounded wait and a clear message when nothing answers. */
import { jetstream, type JetStreamClient, type JetStreamManager, jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import type { Authenticator } from "@nats-io/nats-core";
import { AuthenticationError, limits, UnavailableError, ValidationError } from "../../events/mod.ts";
import { displayUrl } from "../log.ts";

export async function connectNats(
  url: string,
  options: {
    name: string;
    timeoutMs?: number;
    /** Who this process is to the broker (see identities.ts); none connects anonymously. */
    authenticator?: Authenticator;
    /** Which identity that is, for the message when the broker refuses it. */
    identity?: string;
    /** Speak TLS, trusting only this CA (VEIL_TLS_CA; `veil up --tls` makes one). */
    tlsCaFile?: string;
  },
): Promise<NatsConnection> {
  const servers = brokerUrls(url);
  try {
    return await connect({
      servers,
      ...tlsOption(servers, options.tlsCaFile),
      name: options.name,
      ...(options.authenticator ? { authenticator: options.authenticator } : {}),
      timeout: options.timeoutMs ?? limits.connectTimeoutMs,
      // Long-running nodes ride out broker restarts; the first connection must succeed.
      maxReconnectAttempts: -1,
      pingInterval: limits.brokerPingIntervalMs,
      maxPingOut: limits.brokerPingsOutMax,
    });
  } catch (cause) {
    if ((cause as Error).name === "AuthorizationError" || /authorization violation/i.test((cause as Error).message)) {
      const who = options.identity ?? (options.authenticator ? "these credentials" : "an anonymous connection");
      throw new AuthenticationError(
        `the broker at ${displayUrl(url)} refused ${who}: it runs with other identities than ${
          options.authenticator ? "the ones this process has (VEIL_CREDS or <data>/broker/identities.json)" : "veil's"
        }, or requires credentials`,
        { cause },
      );
    }
    const reason = (cause as Error).message;
    const hint = /certificate|self.signed|verify/i.test(reason)
      ? options.tlsCaFile
        ? ` (the broker's certificate is not signed by ${options.tlsCaFile}, or does not name this host)`
        : " (the broker serves TLS with a certificate this machine does not trust: set VEIL_TLS_CA to its CA file)"
      : "";
    throw new UnavailableError(`cannot reach NATS at ${displayUrl(url)}: ${reason}${hint}`, { cause });
  }
}

/**
 * The connect option for TLS. With a CA file, the client trusts only that CA (nats.js reads
 * it and hands it to Node as `ca`, which replaces the system roots), so a broker with a
 * certificate from any other CA is refused; without one, a `tls://` URL is checked against
 * the system's roots. Asking for TLS also means a broker that offers none is refused, never
 * spoken to in the clear. The host checked is the one in the URL: the certificate must name it.
 */
export function tlsOption(servers: readonly string[], caFile: string | undefined): { tls?: { caFile?: string } } {
  if (caFile) return { tls: { caFile } };
  return servers.some((server) => server.startsWith("tls:")) ? { tls: {} } : {};
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

/**
 * NATS_URL may name several brokers of one cluster (`nats://a:4222,nats://b:4222`): a
 * process connects to any that answers and, once connected, reconnects to any of them, so
 * one broker node's loss is a reconnect rather than an outage.
 */
/** The broker URLs in a NATS_URL, each checked; a list may not be empty or hold a bad entry. */
export function brokerUrls(text: string): string[] {
  const urls = text.split(",").map((url) => url.trim()).filter(Boolean);
  if (urls.length === 0) throw new ValidationError("NATS_URL names no broker");
  for (const url of urls) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      // Reported below with the rest.
    }
    if (!parsed || !["nats:", "tls:"].includes(parsed.protocol) || !parsed.hostname) {
      throw new ValidationError(
        `NATS_URL entry ${JSON.stringify(displayUrl(url))} is not a nats://host:port (or tls://host:port) URL`,
      );
    }
  }
  return urls;
}
