/**
 * A server's clock against the broker's: the broker stamps every message it stores in
 * VEIL_CLUSTER with its own time, and a server's heartbeat carries the server's time when it
 * was sent, so the last stored heartbeat of a server tells how far apart the two clocks
 * are (less the moment the beat took to arrive, a few milliseconds on a healthy broker).
 */
import { JetStreamApiCodes, JetStreamApiError, type JetStreamManager } from "@nats-io/jetstream";
import type { ClockCheck } from "../../actors/server/clock-check.ts";
import { decodeMessage, heartbeat, heartbeatSubject } from "../../events/mod.ts";
import { clusterStreamName } from "./streams.ts";

export function brokerClockCheck(jsm: JetStreamManager, nodeId: string): ClockCheck {
  const subject = heartbeatSubject("server", nodeId);
  return {
    async offsetMs() {
      try {
        const message = await jsm.streams.getMessage(clusterStreamName, { last_by_subj: subject });
        if (!message) return undefined;
        return heartbeat.parse(decodeMessage(message.data)).sentAt - message.time.getTime();
      } catch (error) {
        // No beat stored yet (the server just started): nothing to compare.
        if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.NoMessageFound) return undefined;
        throw error;
      }
    },
    elapsedMs: () => performance.now(),
  };
}
