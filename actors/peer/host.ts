/**
 * A user's peer machine on a bus, on the actor side (infra/peer/host.ts gives it this machine's
 * command client and timers). Everything goes through the servers, under the
 * user's session: presence is a `peer.presence` command every 5 s (a last one saying
 * `stopped` when it goes), which also hands the servers this run's note and answer keys;
 * notifications arrive on `veil.note.<user>` sealed to the note key; and previews are
 * answered on `veil.peer.<user>.preview`, which only servers may ask, signed with the
 * answer key so a server can tell this peer's answer from anyone else's.
 */
import { type Actor, createActor, fromCallback, toPromise } from "xstate";
import { type PeerEvent, peerMachine } from "./machine.ts";
import { newPeerKeys, openNote, signPreview } from "./presence.ts";
import type { Bus, Logger, RandomSource, Timers } from "../ports.ts";
import type { CommandSender } from "./commands.ts";
import { roundsMachine } from "../rounds.ts";
import {
  bytes,
  failureReply,
  integer,
  limits,
  notificationSubject,
  object,
  peerSubject,
  sharingId,
  string,
} from "../../events/mod.ts";

export interface Note {
  readonly kind: string;
  readonly text: string;
  readonly at: number;
}

const note = object({
  kind: string({ lengthMin: 1, lengthMax: 32 }),
  text: string({ lengthMax: 1_024 }),
  at: integer({ min: 0 }),
});
const previewRequest = object({ image: sharingId, nonce: bytes({ lengthMin: 16, lengthMax: 32 }) });
const sealedNote = object({ sealed: bytes({ lengthMin: 1, lengthMax: 4_096 }) });

export interface HostedPeer {
  readonly actor: Actor<typeof peerMachine>;
  readonly done: Promise<{ problem?: string }>;
}

export interface PeerDeps {
  user: string;
  /** The user's session token: every presence beat is a command under it. */
  token: string;
  bus: Bus;
  /** The same bus's commands, sealed. */
  send: CommandSender;
  /** What the presence beat's interval runs on. */
  timers: Timers;
  random: RandomSource;
  logger: Logger;
  onNote: (note: Note) => void;
  /** The preview of `image` if the user shows it; rejects with a typed error otherwise. */
  preview: (image: string) => Promise<Uint8Array>;
  heartbeatIntervalMs?: number;
}

export function startPeer(deps: PeerDeps): HostedPeer {
  const { user, bus, logger } = deps;
  const keys = newPeerKeys(deps.random);
  const beat = (state: "online" | "stopped") =>
    deps.send("peer.presence", {
      user,
      token: deps.token,
      state,
      noteKey: keys.notes.publicKey,
      answerKey: keys.answers.publicKey,
    }).catch((error: Error) => logger.warn("presence not recorded", { reason: error.message }));
  const machine = peerMachine.provide({
    actors: {
      beatPresence: fromCallback<PeerEvent, { user: string }>(() => {
        void beat("online");
        const beating = createActor(
          roundsMachine(
            [{
              name: "presence",
              intervalMs: deps.heartbeatIntervalMs ?? limits.peerHeartbeatIntervalMs,
              round: () => beat("online"),
            }],
            (_, error) => logger.warn("presence not recorded", { reason: error.message }),
          ),
          { clock: deps.timers },
        );
        beating.start();
        return () => {
          beating.stop();
          void beat("stopped");
        };
      }),
      listenForNotes: fromCallback<PeerEvent, { user: string }>(() => {
        const subscription = bus.subscribe(notificationSubject(user), (message) => {
          try {
            deps.onNote(note.parse(openNote(keys, user, sealedNote.parse(message.data).sealed)));
          } catch (error) {
            logger.warn("ignored a malformed notification", { reason: (error as Error).message });
          }
        });
        return () => subscription.unsubscribe();
      }),
      servePreviews: fromCallback<PeerEvent, { user: string }>(() => {
        const subscription = bus.subscribe(peerSubject(user, "preview"), (message) => {
          let request: { image: string; nonce: Uint8Array };
          try {
            request = previewRequest.parse(message.data);
          } catch (error) {
            return message.respond(failureReply(error));
          }
          deps.preview(request.image).then(
            (png) =>
              message.respond({ ok: true, value: { png, signature: signPreview(keys, { user, ...request, png }) } }),
            (error) => message.respond(failureReply(error)),
          );
        });
        return () => subscription.unsubscribe();
      }),
    },
  });
  const actor = createActor(machine, { input: { user } });
  actor.start();
  return { actor, done: toPromise(actor) };
}
