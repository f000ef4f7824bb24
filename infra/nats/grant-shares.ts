/**
 * The cluster's grant shares in a JetStream KV bucket, one key per grant, sealed with the
 * cluster key by the caller. A delete purges the key: the value and its history leave the
 * stream (a KV delete alone would only add a tombstone over the old value).
 */
import { Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/nats-core";
import type { GrantShareStore } from "../../actors/ports.ts";
import { limits, subjectToken } from "../../events/mod.ts";

export const grantShareBucketName = "veil_grant_shares";

export async function openGrantShareStore(
  nc: NatsConnection,
  options: { replicas: number },
): Promise<GrantShareStore> {
  const kv = await new Kvm(nc).create(grantShareBucketName, {
    history: 1,
    replicas: options.replicas,
    storage: "file",
    max_bytes: limits.grantShareBucketBytesMax,
  });
  const key = (grant: string) => subjectToken(grant, "grant id");
  return {
    async put(grant, sealed) {
      await kv.put(key(grant), sealed);
    },
    async get(grant) {
      const entry = await kv.get(key(grant));
      if (!entry || entry.operation !== "PUT" || entry.value.byteLength === 0) return undefined;
      return entry.value;
    },
    async delete(grant) {
      await kv.purge(key(grant));
    },
  };
}
