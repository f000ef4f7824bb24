/**
 * veil's two streams, created idempotently at start: VEIL_EVENTS is the log of record
 * (never ages out); VEIL_CLUSTER keeps election traffic and heartbeats for a bounded time,
 * so the history of who was alive and who led can be replayed.
 */
import { nanos, type NatsConnection } from "@nats-io/nats-core";
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import type { Logger } from "../../actors/ports.ts";
import {
  electionSubjectsAll,
  eventSubjectsAll,
  heartbeatSubjectsAll,
  limits,
  UnavailableError,
} from "../../events/mod.ts";

/**
 * How many replicas veil's streams and buckets get when the operator does not say: 3 on a
 * broker cluster of 3 or more (an acknowledged write then survives the loss of any one
 * node), else 1. The size is known when veil started the cluster, else the larger of the
 * brokers the operator listed and what the broker says: it tells its clients the client URLs
 * of the cluster's other nodes, once its routes are up.
 */
export function defaultReplicas(nc: NatsConnection, knownNodes?: number, listedNodes = 1): number {
  const nodes = knownNodes ?? Math.max(listedNodes, 1 + (nc.info?.connect_urls?.length ?? 0));
  return nodes >= 3 ? 3 : 1;
}

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
    // Nobody, not even a server identity, may delete or purge what the log holds.
    deny_delete: true,
    deny_purge: true,
  };
  return [
    // The log of record refuses new events when full rather than dropping the oldest.
    {
      ...common,
      name: eventStreamName,
      subjects: [eventSubjectsAll],
      max_age: 0,
      max_bytes: limits.eventStreamBytesMax,
      discard: DiscardPolicy.New,
    },
    {
      ...common,
      name: clusterStreamName,
      subjects: [electionSubjectsAll, heartbeatSubjectsAll],
      max_age: nanos(limits.clusterStreamAgeMs),
      max_bytes: limits.clusterStreamBytesMax,
    },
  ];
}

/**
 * Creates the streams that are missing; safe to call from every node at start. An existing
 * stream keeps its operator's settings: only subjects veil needs and lacks are added, and
 * other differences (replicas, limits) are reported, never silently overwritten.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  options: { replicas: number; logger?: Logger },
): Promise<void> {
  for (const wanted of streamConfigs(options)) {
    const existing = await streamInfo(jsm, wanted.name);
    if (!existing) {
      await createStream(jsm, wanted, options.replicas);
      continue;
    }
    const { config } = existing;
    const missing = wanted.subjects!.filter((subject) => !config.subjects?.includes(subject));
    // A stream from before veil protected its streams gets the protection; it is never taken away.
    const unprotected = !config.deny_delete || !config.deny_purge;
    if (missing.length > 0 || unprotected) {
      await jsm.streams.update(wanted.name, {
        ...config,
        subjects: [...config.subjects, ...missing],
        deny_delete: true,
        deny_purge: true,
      });
    }
    for (const setting of ["num_replicas", "max_msg_size", "max_age"] as const) {
      if (config[setting] !== wanted[setting]) {
        options.logger?.warn("stream setting differs from veil's; leaving it as the operator set it", {
          stream: wanted.name,
          setting,
          current: String(config[setting]),
          veil: String(wanted[setting]),
        });
      }
    }
  }
}

/**
 * Runs setup work (creating streams and buckets) once JetStream can do it. A broker cluster
 * that has just formed answers "temporarily unavailable", or has too few peers for the
 * replicas, until its nodes have met and elected a meta leader: that is waited out, with a
 * bound; anything else fails at once.
 */
export async function whenJetStreamReady<T>(work: () => Promise<T>, options: { logger?: Logger } = {}): Promise<T> {
  const deadline = Date.now() + limits.jetStreamReadyTimeoutMs;
  for (let attempt = 1;; attempt++) {
    try {
      return await work();
    } catch (error) {
      const reason = (error as Error).message;
      const forming = /temporarily unavailable|no suitable peers|insufficient resources|no responders|timeout/i
        .test(reason);
      if (!forming || Date.now() >= deadline) throw error;
      if (attempt === 1) options.logger?.info("waiting for JetStream on the broker cluster to form", { reason });
      await new Promise((resolve) => setTimeout(resolve, Math.min(1_000, 100 * attempt)));
    }
  }
}

async function streamInfo(jsm: JetStreamManager, name: string) {
  try {
    return await jsm.streams.info(name);
  } catch (error) {
    if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound) return undefined;
    throw error;
  }
}

async function createStream(jsm: JetStreamManager, config: StreamSettings, replicas: number): Promise<void> {
  try {
    await jsm.streams.add(config);
  } catch (error) {
    // Another node may have created it between our look and our add: that is success.
    if (await streamInfo(jsm, config.name)) return;
    const hint = replicas > 1
      ? ` (VEIL_STREAM_REPLICAS=${replicas} needs a NATS cluster of at least ${replicas} servers)`
      : "";
    throw new UnavailableError(`cannot create stream ${config.name}: ${(error as Error).message}${hint}`, {
      cause: error,
    });
  }
}
