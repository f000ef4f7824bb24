/**
 * What each identity may publish and subscribe to: exactly what its process needs. The
 * broker enforces these; they are the first of veil's defences, not the only one (requests
 * that carry secrets are sealed as well, and storage nodes check tickets).
 *
 * Users' machines live in their own account, CLIENTS, which sees nothing of the trusted
 * account but what it exports: the commands (`veil.cmd.>`), ticketed chunk puts and gets,
 * and the replies to them. In their own account clients may still only publish those
 * requests and read their replies, so one client cannot read another's requests.
 */
import type { TrustedKind } from "./identities.ts";

export interface Permissions {
  readonly publish: { readonly allow: readonly string[]; readonly deny?: readonly string[] };
  readonly subscribe: { readonly allow: readonly string[]; readonly deny?: readonly string[] };
  /** May answer the requests it receives (publish to their reply subjects) beyond `publish`. */
  readonly allowResponses?: boolean;
}

/** What the trusted account offers users' machines: the commands, and ticketed chunk puts and gets. */
export const commandServices = ["veil.cmd.>"] as const;
export const storageServices = ["veil.store.*.put", "veil.store.*.get"] as const;
export const clientServices = [...commandServices, ...storageServices] as const;
/** What the trusted account streams to users' machines: their notifications and peers' requests. */
export const clientStreams = ["veil.note.>"] as const;
/** What users' machines offer the trusted account: their peers' answers (previews), checked by servers. */
export const peerServices = ["veil.peer.>"] as const;

/** Never for anyone: deleting or purging veil's streams and buckets loses what cannot be rebuilt. */
const destructiveJetStream = [
  "$JS.API.STREAM.DELETE.>",
  "$JS.API.STREAM.PURGE.>",
  "$JS.API.STREAM.MSG.DELETE.>",
];

/** What an operator's read-only tools use: stream and consumer info, message reads, ephemeral consumers. */
const jetStreamReads = [
  "$JS.API.INFO",
  "$JS.API.STREAM.NAMES",
  "$JS.API.STREAM.LIST",
  "$JS.API.STREAM.INFO.*",
  "$JS.API.STREAM.MSG.GET.*",
  "$JS.API.DIRECT.GET.>",
  "$JS.API.CONSUMER.CREATE.>",
  "$JS.API.CONSUMER.INFO.>",
  "$JS.API.CONSUMER.DELETE.>",
  "$JS.API.CONSUMER.MSG.NEXT.>",
  "$JS.FC.>",
];

export const trustedPermissions: Readonly<Record<TrustedKind, Permissions>> = {
  // Servers keep the log and the buckets, elect, heartbeat, serve commands, reach storage
  // nodes for repair and collection, and tell peers of notifications. They never speak as
  // a storage node. They answer requests on reply subjects they may publish to (their own
  // account's inboxes, and `_R_.>`, where the broker maps the replies of users' machines),
  // not through `allow_responses`: with it, nats-server 2.9 tracks the reply subject of
  // every message it delivers, JetStream's included, which made reading the log 25 times
  // slower (7k instead of 170k messages a second, measured).
  server: {
    publish: {
      allow: ["veil.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "_INBOX.>", "_R_.>"],
      deny: [...destructiveJetStream, "veil.hb.storage.>"],
    },
    subscribe: { allow: ["veil.>", "_INBOX.>"] },
  },
  // Storage nodes answer on their own subjects, heartbeat as storage, and ask the servers
  // for the cluster's public keys. They never touch the log.
  storage: {
    publish: { allow: ["veil.hb.storage.*", "veil.cmd.cluster.keys"] },
    subscribe: { allow: ["veil.store.*.*", "_INBOX.>"] },
    allowResponses: true,
  },
  // Operators read: the log, the snapshots, the cluster's view of its nodes.
  operator: {
    publish: { allow: [...jetStreamReads, "veil.cmd.cluster.nodes", "veil.cmd.cluster.keys"] },
    subscribe: { allow: ["_INBOX.>"] },
  },
};

export const clientPermissions: Permissions = {
  publish: { allow: [...clientServices] },
  subscribe: { allow: ["_INBOX.>", ...clientStreams, ...peerServices] },
  allowResponses: true,
};
