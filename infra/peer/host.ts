/**
 * Hosts a user's peer machine on a bus: presence heartbeats on `veil.hb.peer.<user>` (every
 * 5 s by default; a last one saying `stopped` when it goes), the user's notifications from
 * `veil.note.<user>`, and answers on `veil.peer.<user>.preview` with the preview of one of
 * the user's discoverable objects (`preview` decides; anything else is "not found").
 */
import process from "node:process";
import { type Actor, createActor, fromCallback, toPromise } from "xstate";
import { type PeerEvent, peerMachine } from "../../actors/peer/machine.ts";
import type { Bus, Clock, Logger } from "../../actors/ports.ts";
import { heartbeatSubject } from "../../actors/server/messages.ts";
import { integer, limits, notificationSubject, object, peerSubject, sharingId, string } from "../../events/mod.ts";
import { failureReply } from "../server/commands.ts";

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
const previewRequest = object({ image: sharingId });

export interface HostedPeer {
  readonly actor: Actor<typeof peerMachine>;
  readonly done: Promise<{ problem?: string }>;
}

export function hostPeer(deps: {
  user: string;
  bus: Bus;
  clock: Clock;
  logger: Logger;
  onNote: (note: Note) => void;
  /** The preview of `image` if the user shows it; rejects with a typed error otherwise. */
  preview: (image: string) => Promise<Uint8Array>;
  heartbeatIntervalMs?: number;
}): HostedPeer {
  const { user, bus, clock, logger } = deps;
  const beat = (state: string) =>
    bus.publish(heartbeatSubject("peer", user), {
      node: user,
      role: "peer",
      state,
      term: 0,
      inFlight: 0,
      memoryBytes: process.memoryUsage().rss,
      sentAt: clock.now(),
    });
  const machine = peerMachine.provide({
    actors: {
      beatPresence: fromCallback<PeerEvent, { user: string }>(() => {
        beat("online");
        const timer = setInterval(() => beat("online"), deps.heartbeatIntervalMs ?? limits.peerHeartbeatIntervalMs);
        return () => {
          clearInterval(timer);
          try {
            beat("stopped");
          } catch (error) {
            logger.debug("last presence beat not sent", { reason: (error as Error).message });
          }
        };
      }),
      listenForNotes: fromCallback<PeerEvent, { user: string }>(() => {
        const subscription = bus.subscribe(notificationSubject(user), (message) => {
          try {
            deps.onNote(note.parse(message.data));
          } catch (error) {
            logger.warn("ignored a malformed notification", { reason: (error as Error).message });
          }
        });
        return () => subscription.unsubscribe();
      }),
      servePreviews: fromCallback<PeerEvent, { user: string }>(() => {
        const subscription = bus.subscribe(peerSubject(user, "preview"), (message) => {
          let image: string;
          try {
            ({ image } = previewRequest.parse(message.data));
          } catch (error) {
            return message.respond(failureReply(error));
          }
          deps.preview(image).then(
            (png) => message.respond({ ok: true, value: png }),
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
