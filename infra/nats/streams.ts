/**
 * veil's two streams, created idempotently at start: VEIL_EVENTS is the log of record
 * (never ages out); VEIL_CLUSTER keeps election traffic and heartbeats for a bounded time,
 * so the history of who was alive and who led can be replayed.
 */
import { nanos } from "@nats-io/nats-core";
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { electionSubjectsAll, eventSubjectsAll, heartbeatSubjectsAll, limits } from "../../events/mod.ts";

export const eventStreamName = "VEIL_EVENTS";
export const clusterStreamName = "VEIL_CLUSTER";

type StreamSettings = Partial<StreamConfig> & { name: string };

export function streamConfigs(options: { replicas: number }): StreamSettings[] {
  const common = {
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    discard: DiscardPolicy.Old,
    num_replicas: options.replicas,
    max_msg_size: limits.eventBytesMax,
    duplicate_window: nanos(limits.duplicateWindowMs),
  };
  return [
    { ...common, name: eventStreamName, subjects: [eventSubjectsAll], max_age: 0 },
    {
      ...common,
      name: clusterStreamName,
      subjects: [electionSubjectsAll, heartbeatSubjectsAll],
      max_age: nanos(limits.clusterStreamAgeMs),
    },
  ];
}

/** Creates the streams, or brings an existing one's settings up to date; safe to call from every node. */
export async function ensureStreams(jsm: JetStreamManager, options: { replicas: number }): Promise<void> {
  for (const config of streamConfigs(options)) {
    try {
      await jsm.streams.info(config.name);
    } catch (error) {
      if (!(error instanceof JetStreamApiError) || error.code !== JetStreamApiCodes.StreamNotFound) throw error;
      try {
        await jsm.streams.add(config);
        continue;
      } catch (raced) {
        // Another node created it between our look and our add: fall through to update.
        if (!(raced instanceof JetStreamApiError)) throw raced;
      }
    }
    await jsm.streams.update(config.name, config);
  }
}
