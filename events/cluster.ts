/**
 * Cluster membership: which nodes joined and left, and who leads which term. The
 * election traffic itself lives in VEIL_CLUSTER; only its outcome is recorded here.
 */
import { defineEvents, type EventsOf } from "./envelope.ts";
import { limits } from "./limits.ts";
import { bytes, integer, object, oneOf, optional, string } from "./schema.ts";

export const nodeRoles = ["server", "storage", "peer"] as const;
export type NodeRole = (typeof nodeRoles)[number];

export const nodeLeftReasons = ["shutdown", "timeout"] as const;

const nodeId = string({ lengthMin: 1, lengthMax: limits.subjectTokenLengthMax, pattern: /^[A-Za-z0-9_-]+$/ });
const role = oneOf(nodeRoles);

export const clusterEvents = defineEvents({
  NodeJoined: { version: 1, data: object({ node: nodeId, role }) },
  NodeLeft: { version: 1, data: object({ node: nodeId, role, reason: oneOf(nodeLeftReasons) }) },
  /** Appended with an expected subject sequence: two nodes can never win the same term. */
  LeaderElected: { version: 1, data: object({ term: integer({ min: 1 }), node: nodeId }) },
  /**
   * A keyed fingerprint of the cluster key (it reveals nothing of the key), recorded by the
   * first server: a server started with another key refuses to run instead of sealing
   * secrets no other server can open.
   */
  ClusterKeyRecorded: {
    version: 1,
    data: object({
      fingerprint: bytes({ lengthMin: 16, lengthMax: 16 }),
      /**
       * The public key commands are sealed to (derived from the cluster key), which clients
       * pin; absent in records from before commands were sealed, added by the next server.
       */
      sealingKey: optional(bytes({ lengthMin: 32, lengthMax: 32 })),
    }),
  },
});

export type ClusterEvent = EventsOf<typeof clusterEvents>;
