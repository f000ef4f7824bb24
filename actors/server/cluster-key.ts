/**
 * The cluster key's record: its fingerprint and public sealing key in the log, so servers
 * with different keys (each sealing secrets the others cannot open) refuse to start, and
 * clients pin the one key. The decision is pure; the shared decide-and-append loop records it.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import type { EventLog, LogRecord } from "../ports.ts";
import { clusterKeySubject, type EventOrigin, ValidationError, veilEvent } from "../../events/mod.ts";
import { decideAndAppend, type Decision } from "./decide-and-append.ts";

export interface ClusterKeyRecord {
  readonly fingerprint: Uint8Array;
  readonly sealingKey: Uint8Array;
}

/**
 * Nothing to record when the log has this key with its sealing key; a refusal when it has
 * another; otherwise the record (a first one, or one from before commands were sealed, which
 * lacked the public key).
 */
export function decideClusterKey(last: LogRecord | undefined, key: ClusterKeyRecord, origin: EventOrigin): Decision {
  if (last?.ok && last.event.type === "ClusterKeyRecorded") {
    const same = bytesToHex(last.event.data.fingerprint) === bytesToHex(key.fingerprint);
    if (!same) {
      return {
        events: [],
        rejection: new ValidationError(
          "this server's cluster key is not the one the cluster uses; give every server the same key " +
            "(VEIL_CLUSTER_KEY, or the same cluster.key file in VEIL_DATA)",
        ),
      };
    }
    if (last.event.data.sealingKey) return { events: [] };
  }
  return { events: [veilEvent("ClusterKeyRecorded", { ...key }, origin)] };
}

/** Records the key if the cluster has none yet, and otherwise checks it is the cluster's. */
export async function recordClusterKey(log: EventLog, key: ClusterKeyRecord, origin: () => EventOrigin) {
  await decideAndAppend({
    log,
    subject: clusterKeySubject,
    what: "the cluster key's record",
    load: async () => {
      const last = await log.readLast(clusterKeySubject);
      return { seq: last?.seq ?? 0, last };
    },
    decide: ({ last }) => decideClusterKey(last, key, origin()),
    // Nothing reads it back through a projection: the next load reads the log itself.
    applied: () => Promise.resolve(),
  });
}
