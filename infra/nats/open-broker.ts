/**
 * A server refuses to run on a broker that anyone can write the log on. It connects once
 * without credentials and tries what only a trusted identity may do: reach JetStream's API,
 * and publish a message into the trusted account (on a probe subject that no stream
 * captures, so an open broker's log is not touched by the check itself).
 */
import { type NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { ForbiddenError, limits } from "../../events/mod.ts";
import { displayUrl } from "../log.ts";
import { brokerUrls, tlsOption } from "./connection.ts";
import { cryptoRandom } from "../random.ts";
import { toBase64Url } from "../../actors/server/accounts/secrets.ts";

export const openBrokerHint = "run veil's own broker (`veil up` starts one with the generated config when nothing " +
  "listens at NATS_URL), or run nats-server with the config `veil broker config` prints";

/** What an anonymous connection could do that it must not; empty when the broker is closed to it. */
export async function anonymousRights(url: string, trusted: NatsConnection, tlsCaFile?: string): Promise<string[]> {
  let anonymous: NatsConnection;
  try {
    const servers = brokerUrls(url);
    anonymous = await connect({
      servers,
      ...tlsOption(servers, tlsCaFile),
      timeout: limits.connectTimeoutMs,
      maxReconnectAttempts: 0,
    });
  } catch {
    return []; // Anonymous connections are refused outright: the broker requires credentials.
  }
  const found: string[] = [];
  try {
    const probe = `veil.probe.${toBase64Url(cryptoRandom.bytes(12)).replace(/[^A-Za-z0-9]/g, "x")}`;
    let arrived = false;
    const subscription = trusted.subscribe(probe, {
      callback: () => {
        arrived = true;
      },
    });
    await trusted.flush();
    anonymous.publish(probe);
    // Each flush is a round trip: once both came back, the broker has delivered the probe if it would.
    await anonymous.flush().catch(() => {});
    await trusted.flush();
    subscription.unsubscribe();
    if (arrived) found.push("publish into the servers' account (so also to veil.evt.>)");
    try {
      await anonymous.request("$JS.API.INFO", undefined, { timeout: limits.openBrokerProbeTimeoutMs });
      found.push("use JetStream's API ($JS.API.>)");
    } catch {
      // Refused or unanswered: as it should be.
    }
  } finally {
    await anonymous.close().catch(() => {});
  }
  return found;
}

/** Throws a clear ForbiddenError when an anonymous connection has rights only servers may have. */
export async function refuseOpenBroker(url: string, trusted: NatsConnection, tlsCaFile?: string): Promise<void> {
  const rights = await anonymousRights(url, trusted, tlsCaFile);
  if (rights.length === 0) return;
  throw new ForbiddenError(
    `the broker at ${displayUrl(url)} is open: an unauthenticated connection can ${
      rights.join(" and ")
    }; veil servers refuse to run there, since any user's machine could forge the log. To fix it, ${openBrokerHint}`,
  );
}
