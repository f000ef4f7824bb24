/**
 * Projection snapshots in a JetStream KV bucket: `{seq, storedAt, version, state}` per
 * projection name, msgpack-encoded. Only a cache: a missing, stale or unreadable snapshot
 * means a rebuild from the log, never a wrong state.
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Snapshot, SnapshotStore } from "../../actors/ports.ts";
import { decodeMessage, encodeMessage, integer, object, subjectToken } from "../../events/mod.ts";

export const snapshotBucketName = "veil_snapshots";
/** Snapshots ride in one NATS message, so they share its default 1 MiB ceiling. */
const snapshotBytesMax = 1024 * 1024;

const snapshotHead = object({ seq: integer({ min: 0 }), storedAt: integer({ min: 0 }), version: integer({ min: 1 }) });

export async function openSnapshotStore(nc: NatsConnection, options: { replicas: number }): Promise<SnapshotStore> {
  const kv = await new Kvm(nc).create(snapshotBucketName, { history: 1, replicas: options.replicas });
  return {
    async load(name) {
      const entry = await kv.get(subjectToken(name, "projection name"));
      if (!entry || entry.operation !== "PUT" || entry.value.byteLength === 0) return undefined;
      const value = decodeMessage(entry.value, snapshotBytesMax);
      return { ...snapshotHead.parse(value), state: (value as { state: unknown }).state } satisfies Snapshot;
    },
    async save(name, snapshot) {
      await kv.put(subjectToken(name, "projection name"), encodeMessage(snapshot));
    },
  };
}
