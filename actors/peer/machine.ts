/**
 * A user's peer, long-running (`veil peer`): while `online` it beats its presence, listens
 * for the user's notifications and answers for the previews of the user's discoverable
 * objects; on STOP (or when one of those fails) it goes `offline`, and each of them says
 * goodbye as it stops. The three are injected callback actors: NATS in production, the
 * simulator's bus in tests.
 */
import { assign, fromCallback, setup } from "xstate";

export type PeerEvent = { readonly type: "STOP" } | { readonly type: "FAILED"; readonly reason: string };

const notProvided = (name: string) =>
  fromCallback<PeerEvent, { user: string }>(() => {
    throw new Error(`programmer error: ${name} not provided`);
  });

export const peerMachine = setup({
  types: {
    input: {} as { user: string },
    context: {} as { user: string; problem?: string },
    events: {} as PeerEvent,
    output: {} as { problem?: string },
  },
  actors: {
    beatPresence: notProvided("beatPresence"),
    listenForNotes: notProvided("listenForNotes"),
    servePreviews: notProvided("servePreviews"),
  },
}).createMachine({
  id: "peer",
  context: ({ input }) => ({ user: input.user }),
  initial: "online",
  states: {
    online: {
      invoke: [
        { src: "beatPresence", input: ({ context }) => ({ user: context.user }) },
        { src: "listenForNotes", input: ({ context }) => ({ user: context.user }) },
        { src: "servePreviews", input: ({ context }) => ({ user: context.user }) },
      ],
      on: {
        STOP: "offline",
        FAILED: { target: "offline", actions: assign({ problem: ({ event }) => event.reason }) },
      },
    },
    offline: { type: "final" },
  },
  output: ({ context }) => (context.problem ? { problem: context.problem } : {}),
});
