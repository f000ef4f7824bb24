/** What a hosted server needs for account commands, for tests: a fresh cluster key and a slow hash. */
import { slowHash } from "../../actors/crypto/mod.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { cryptoRandom } from "../../infra/random.ts";
import type { ServerHostDeps } from "../../infra/server/host.ts";

export function testIdentity(
  options: { slowHash?: ServerHostDeps["identity"]["slowHash"]; sessionTtlMs?: number; clusterKey?: Uint8Array } = {},
): Pick<ServerHostDeps, "identity" | "random"> {
  return {
    random: cryptoRandom,
    identity: {
      secrets: clusterSecrets(options.clusterKey ?? cryptoRandom.bytes(32), cryptoRandom),
      slowHash: options.slowHash ?? slowHash,
      sessionTtlMs: options.sessionTtlMs ?? 24 * 60 * 60 * 1_000,
    },
  };
}
