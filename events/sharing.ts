/**
 * Sharing: requests (`veil.evt.request.<id>`) and grants (`veil.evt.grant.<id>`). A user
 * asks an owner for a discoverable object; the owner approves with a number of views (and
 * an expiry) or denies; an approval issues a grant, whose views the cluster spends one
 * `ViewConsumed` at a time, appended with the grant's expected sequence so concurrent
 * viewers cannot spend the same view. The grant key is split in two shares: share A, sealed
 * to the recipient's X25519 key, is in the log; share B is held by the cluster outside it
 * (a KV bucket, sealed with the cluster key) and purged when the closed grant is shredded.
 */
import { defineEvents, type EventsOf } from "./envelope.ts";
import { imageId, imageIdPattern, objectName, objectType } from "./image.ts";
import { limits } from "./limits.ts";
import { bytes, integer, object, oneOf, optional, string } from "./schema.ts";
import { username } from "./user.ts";

/** Request and grant ids: 128 random bits in hex, like object ids. */
export const sharingId = string({ lengthMin: 32, lengthMax: 32, pattern: imageIdPattern });

export const requestEvents = defineEvents({
  AccessRequested: {
    version: 1,
    data: object({
      request: sharingId,
      from: username,
      owner: username,
      image: imageId,
      /** The name the owner shows the object under (public by the owner's choice), so both sides can tell what it was about. */
      name: objectName,
      expiresAt: integer({ min: 0 }),
    }),
  },
  RequestApproved: { version: 1, data: object({ request: sharingId, grant: sharingId }) },
  RequestDenied: { version: 1, data: object({ request: sharingId }) },
  /** Nobody answered in time (the leader records it). */
  RequestExpired: { version: 1, data: object({ request: sharingId }) },
});

export const grantCloseReasons = ["views-spent", "expired", "revoked"] as const;

export const grantEvents = defineEvents({
  /**
   * v2 records no type: the servers no longer know it (it is sealed in the copy's manifest,
   * which the recipient opens). v1 grants keep theirs; the upcaster changes nothing.
   */
  GrantIssued: {
    version: 2,
    upcasters: { 1: (data: unknown) => data },
    data: object({
      grant: sharingId,
      request: sharingId,
      owner: username,
      recipient: username,
      /** The grant's own copy in the vault (sealed for this grant, not the original). */
      image: imageId,
      /** The name of the request: the one the owner shows the object under. */
      name: objectName,
      bytes: integer({ min: 0, max: limits.objectBytesMax }),
      type: optional(objectType),
      views: integer({ min: 1, max: limits.grantViewsMax }),
      expiresAt: integer({ min: 0 }),
      /** Share A of the grant key, sealed to the recipient's X25519 public key. */
      shareA: bytes({ lengthMin: 1, lengthMax: 256 }),
    }),
  },
  /** One view spent; `viewsLeft` after it. `view` is the viewer's id for the attempt: a replay spends nothing. */
  ViewConsumed: {
    version: 1,
    data: object({
      grant: sharingId,
      view: sharingId,
      viewer: username,
      viewsLeft: integer({ min: 0, max: limits.grantViewsMax }),
    }),
  },
  GrantClosed: { version: 1, data: object({ grant: sharingId, reason: oneOf(grantCloseReasons) }) },
  /** The cluster's share of a closed grant is deleted and its copy removed: nobody can open it again. */
  GrantShredded: { version: 1, data: object({ grant: sharingId, image: optional(imageId) }) },
});

export type RequestEvent = EventsOf<typeof requestEvents>;
export type GrantEvent = EventsOf<typeof grantEvents>;
