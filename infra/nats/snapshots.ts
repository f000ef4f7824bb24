/**
 * Projection snapshots in a JetStream KV bucket: `{seq, storedAt, version, state}` per
 * projection name, msgpack-encoded. Only a cache: a missing, stale or unreadable snapshot
 * means a rebuild from the log, never a wrong state.
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Snapshot, SnapshotStore } from "../../actors/ports.ts";
import { decodeMessage, encodeMessage, integer, limits, object, string, subjectToken } from "../../events/mod.ts";

export const snapshotBucketName = "veil_snapshots";

const snapshotHead = object({
  logIdentity: string({ lengthMin: 1, lengthMax: 256 }),
  seq: integer({ min: 0 }),
  storedAt: integer({ min: 0 }),
  version: integer({ min: 1 }),
});

/**
 * Servers create the bucket if it is missing; an operator's read-only tools (`readOnly`)
 * only open it, since their identity may not create streams.
 */
export async function openSnapshotStore(
  nc: NatsConnection,
  options: { replicas: number; readOnly?: boolean },
): Promise<SnapshotStore> {
  const kvm = new Kvm(nc);
  const kv = options.readOnly ? await kvm.open(snapshotBucketName) : await kvm.create(snapshotBucketName, {
    history: 1,
    replicas: options.replicas,
    max_bytes: limits.snapshotBucketBytesMax,
  });
  return {
    async load(name) {
      const entry = await kv.get(subjectToken(name, "projection name"));
      if (!entry || entry.operation !== "PUT" || entry.value.byteLength === 0) return undefined;
      const value = decodeMessage(entry.value, limits.snapshotBytesMax);
      return { ...snapshotHead.parse(value), state: (value as { state: unknown }).state } satisfies Snapshot;
    },
    async save(name, snapshot) {
      await kv.put(subjectToken(name, "projection name"), encodeMessage(snapshot));
    },
  };
}
