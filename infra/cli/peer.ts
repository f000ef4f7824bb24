/**
 * A user's peer from a stored profile: what `veil peer` runs, and what `veil up --peer`
 * starts beside the cluster for a demo. The account key opens the previews it answers for;
 * notifications are printed, prefixed with the user when several peers share a terminal.
 */
import { commandsOver } from "../command-client.ts";
import { Buffer } from "node:buffer";
import type { Bus, Logger } from "../../actors/ports.ts";
import { AuthenticationError } from "../../events/mod.ts";
import { type HostedPeer, hostPeer } from "../peer/host.ts";
import { cryptoRandom } from "../random.ts";
import { onThisMachine } from "../vault/mod.ts";
import { previewServer } from "../sharing/previews.ts";
import { startCryptoActor, startStegoActor } from "../workers/actors.ts";
import type { StoredSession } from "./profile.ts";

export function hostProfilePeer(options: {
  bus: Bus;
  stored: StoredSession;
  logger: Logger;
  print: (line: string) => void;
  /** Prefix each printed notification with the user (several peers in one terminal). */
  labelled?: boolean;
}): HostedPeer {
  const { bus, stored, logger, print } = options;
  if (!stored.accountKey) throw new AuthenticationError(`log in again as ${stored.user} to unlock your vault here`);
  const crypto = startCryptoActor({ size: 1 });
  const stego = startStegoActor({ size: 1 });
  const peer = hostPeer({
    user: stored.user,
    token: stored.token,
    bus,
    random: cryptoRandom,
    logger,
    onNote: (note) =>
      print(
        `${options.labelled ? `[${stored.user}] ` : ""}${new Date(note.at).toISOString()} ${note.kind}: ${note.text}`,
      ),
    preview: previewServer({
      bus,
      send: commandsOver(bus),
      crypto,
      stego,
      ...onThisMachine,
      random: cryptoRandom,
      session: { user: stored.user, token: stored.token },
      accountKey: new Uint8Array(Buffer.from(stored.accountKey, "base64url")),
      logger,
    }),
  });
  const done = peer.done.finally(() => Promise.all([crypto.stop(), stego.stop()]));
  return { actor: peer.actor, done };
}
