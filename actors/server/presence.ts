/**
 * Presence and previews, through the servers. A peer says it is online with a
 * `peer.presence` command under its session; the server that takes it publishes the
 * heartbeat (`veil.hb.peer.<user>`, which no user's machine may publish), so every server
 * learns who is online and with which keys. A preview is asked of the owner's peer by a
 * server, with a fresh nonce, and believed only when the answer is signed with the key that
 * peer went online with: whoever else answers is skipped, and the request waits for the
 * signed answer.
 */
import { isPreviewSigned } from "../peer/presence.ts";
import type { Bus, Clock, EventLog, RandomSource } from "../ports.ts";
import {
  ForbiddenError,
  heartbeatSubject,
  limits,
  NotFoundError,
  peerSubject,
  presenceRequests,
  previewAnswer,
  readReply,
  UnavailableError,
} from "../../events/mod.ts";
import { type HealthState, type HeartbeatTimeouts, imageOf, type ImagesState, isAlive } from "../../projections/mod.ts";
import type { UsersState } from "../../projections/users.ts";
import type { Projector } from "./projector.ts";
import { type CommandHandler } from "./commands.ts";
import { userSessions } from "./accounts/sessions.ts";

const requests = presenceRequests;

export function presenceCommands(deps: {
  bus: Bus;
  log: EventLog;
  clock: Clock;
  random: RandomSource;
  users: Projector<UsersState>;
  images: Projector<ImagesState>;
  presence: () => HealthState;
  heartbeatTimeouts: HeartbeatTimeouts;
}): Record<string, CommandHandler> {
  const { bus, clock, images } = deps;
  const { session } = userSessions(deps);

  return {
    "peer.presence": async (data) => {
      const request = requests.presence.parse(data);
      await session(request);
      bus.publish(heartbeatSubject("peer", request.user), {
        node: request.user,
        role: "peer",
        state: request.state,
        term: 0,
        inFlight: 0,
        memoryBytes: 0,
        sentAt: clock.now(),
        noteKey: request.noteKey,
        answerKey: request.answerKey,
      });
      return { state: request.state };
    },

    /** One shown object's preview, from its owner's peer, checked against the key that peer went online with. */
    "peer.preview": async (data) => {
      const request = requests.preview.parse(data);
      await session(request);
      await images.caughtUp();
      const image = imageOf(images.state, request.image);
      if (!image || image.owner !== request.of || !image.discoverable || !image.preview) {
        throw new NotFoundError(`${request.of} shows no preview of ${request.image}`);
      }
      const online = deps.presence().nodes[request.of];
      if (!online?.answerKey || online.state !== "online" || !isAlive(online, clock.now(), deps.heartbeatTimeouts)) {
        throw new UnavailableError(`${request.of} is not online`);
      }
      const nonce = deps.random.bytes(16);
      const subject = peerSubject(request.of, "preview");
      const signed = (reply: unknown) => {
        try {
          const answer = previewAnswer.parse(readReply(reply, subject));
          return isPreviewSigned(online.answerKey!, { user: request.of, image: request.image, nonce, ...answer });
        } catch {
          return false;
        }
      };
      // Any client may listen on `veil.peer.>`, so a forger may answer first: its answer is skipped, not believed.
      const reply = await bus.request(subject, { image: request.image, nonce }, {
        timeoutMs: limits.commandTimeoutMs,
        accept: signed,
      });
      const answer = previewAnswer.parse(readReply(reply, subject));
      if (!signed(reply)) {
        throw new ForbiddenError(`the answer for ${request.of}'s preview was not signed by ${request.of}'s peer`);
      }
      return answer.png;
    },
  };
}
