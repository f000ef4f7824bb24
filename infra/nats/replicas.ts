/**
 * How veil's streams and buckets are replicated on the broker, as `veil health` shows it:
 * how many replicas each has, which broker node leads it, and which replicas are current.
 * A replica that is offline or behind is a problem: one more loss and acknowledged writes
 * may be unreadable until it is back.
 */
import type { NatsConnection } from "@nats-io/nats-core";
import { jetstreamManager } from "@nats-io/jetstream";
import { clusterStreamName, eventStreamName } from "./streams.ts";
import { snapshotBucketName } from "./snapshots.ts";
import { grantShareBucketName } from "./grant-shares.ts";

export interface StreamReplicas {
  readonly name: string;
  readonly replicas: number;
  /** The broker node that leads the stream (undefined on a single broker). */
  readonly leader?: string;
  readonly peers: readonly { readonly name: string; readonly current: boolean; readonly offline: boolean }[];
  readonly problems: readonly string[];
}

const streams = [eventStreamName, clusterStreamName, `KV_${snapshotBucketName}`, `KV_${grantShareBucketName}`];

export async function streamReplicas(nc: NatsConnection): Promise<StreamReplicas[]> {
  const jsm = await jetstreamManager(nc);
  return await Promise.all(streams.map(async (name): Promise<StreamReplicas> => {
    try {
      const { config, cluster } = await jsm.streams.info(name);
      const peers = (cluster?.replicas ?? []).map((peer) => ({
        name: peer.name,
        current: peer.current,
        offline: peer.offline ?? false,
      }));
      const problems = [
        ...(config.num_replicas > 1 && !cluster?.leader ? ["no broker node leads it: writes and reads stop"] : []),
        ...peers.filter((peer) => peer.offline).map((peer) => `replica on ${peer.name} is offline`),
        ...peers.filter((peer) => !peer.offline && !peer.current).map((peer) => `replica on ${peer.name} is behind`),
      ];
      return {
        name,
        replicas: config.num_replicas,
        ...(cluster?.leader ? { leader: cluster.leader } : {}),
        peers,
        problems,
      };
    } catch (error) {
      return { name, replicas: 0, peers: [], problems: [`cannot read it: ${(error as Error).message}`] };
    }
  }));
}

export function describeReplicas(stream: Omit<StreamReplicas, "problems">): string {
  const where = stream.leader
    ? ` (leader ${stream.leader}${
      stream.peers.map((peer) => `, ${peer.name} ${peer.offline ? "offline" : peer.current ? "current" : "behind"}`)
        .join("")
    })`
    : "";
  return `${stream.name} ${stream.replicas} ${stream.replicas === 1 ? "replica" : "replicas"}${where}`;
}
