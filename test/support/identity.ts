/** What a hosted server needs for account commands, for tests: a fresh cluster key and a slow hash. */
import { ReplayWindow, slowHash } from "../../actors/crypto/mod.ts";
import type { MailMessage, MailTransport } from "../../actors/ports.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { cryptoRandom } from "../../infra/random.ts";
import type { ServerHostDeps } from "../../infra/server/host.ts";

/** Every server of a cluster holds the same key: the servers of one test file share this one. */
const clusterKeyOfThisFile = cryptoRandom.bytes(32);

export function testIdentity(
  options: {
    slowHash?: ServerHostDeps["identity"]["slowHash"];
    sessionTtlMs?: number;
    clusterKey?: Uint8Array;
    mail?: MailTransport;
  } = {},
): Pick<ServerHostDeps, "identity" | "random"> {
  return {
    random: cryptoRandom,
    identity: {
      secrets: clusterSecrets(options.clusterKey ?? clusterKeyOfThisFile, cryptoRandom),
      replays: new ReplayWindow(),
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
