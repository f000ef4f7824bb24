/**
 * What a hosted server needs for account commands and storage tickets, for tests: a cluster
 * key and a slow hash. Unless a test gives its own, every server of a test file shares one
 * key, as a real cluster does, so the storage nodes it hosts check tickets with its public half.
 */
import { ReplayWindow, slowHash } from "../../actors/crypto/mod.ts";
import type { MailMessage, MailTransport } from "../../actors/ports.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { ticketKeys } from "../../actors/storage-node/tickets.ts";
import { cryptoRandom } from "../../infra/random.ts";
import type { ServerHostDeps } from "../../infra/server/host.ts";

export const testClusterKey = cryptoRandom.bytes(32);
/** The ticket keys of `testClusterKey`: tests that put or get chunks directly sign with its secret half. */
export const testTicketKeys = ticketKeys(testClusterKey);

export function testIdentity(
  options: {
    slowHash?: ServerHostDeps["identity"]["slowHash"];
    sessionTtlMs?: number;
    clusterKey?: Uint8Array;
    mail?: MailTransport;
    replays?: ReplayWindow;
  } = {},
): Pick<ServerHostDeps, "identity" | "random" | "ticketKeys"> {
  const clusterKey = options.clusterKey ?? testClusterKey;
  return {
    random: cryptoRandom,
    ticketKeys: ticketKeys(clusterKey),
    identity: {
      secrets: clusterSecrets(clusterKey, cryptoRandom),
      replays: options.replays ?? new ReplayWindow(),
      slowHash: options.slowHash ?? slowHash,
      sessionTtlMs: options.sessionTtlMs ?? 24 * 60 * 60 * 1_000,
      mail: options.mail ?? recordingMail().transport,
    },
  };
}

/** A mail transport that keeps what it was given, to assert on. */
export function recordingMail(): { transport: MailTransport; sent: MailMessage[] } {
  const sent: MailMessage[] = [];
  return { sent, transport: { kind: "file", send: (message) => Promise.resolve(void sent.push(message)) } };
}
