/** What the sharing commands answer, checked by the client before it trusts a field. */
import { grantCloseReasons, sharingId } from "../sharing.ts";
import { imageId, legacyMeta, manifestPart, objectName, objectType } from "../image.ts";
import { limits } from "../limits.ts";
import { pageCursor } from "../paging.ts";
import { array, boolean, bytes, type Infer, integer, object, oneOf, optional, string } from "../schema.ts";
import { authenticated } from "./accounts.ts";
import { nodeTickets } from "../tickets.ts";
import { username } from "../user.ts";

const time = integer({ min: 0 });

/** A request as its parties see it (`request.create`, `request.show`, `request.list`). */
export const requestReply = object({
  request: sharingId,
  from: username,
  owner: username,
  image: imageId,
  name: objectName,
  status: oneOf(["pending", "approved", "denied", "expired"]),
  requestedAt: time,
  expiresAt: time,
  decidedAt: optional(time),
  grant: optional(sharingId),
});
export type RequestReply = Infer<typeof requestReply>;

/** One page of `request.list`: requests to the caller and from the caller. */
export const requestListReply = object({
  incoming: array(requestReply, { lengthMax: limits.listPageMax }),
  outgoing: array(requestReply, { lengthMax: limits.listPageMax }),
  next: optional(pageCursor),
});

/** A grant as its parties see it (`grant.issue`, `grant.revoke`, `grant.list`, `grant.inbox`). */
const grantFields = {
  grant: sharingId,
  owner: username,
  recipient: username,
  name: objectName,
  bytes: integer({ min: 0, max: limits.objectBytesMax }),
  type: optional(objectType),
  views: integer({ min: 1, max: limits.grantViewsMax }),
  viewsLeft: integer({ min: 0, max: limits.grantViewsMax }),
  expiresAt: time,
  issuedAt: time,
  status: oneOf(["open", "closed"]),
  closedReason: optional(oneOf(grantCloseReasons)),
  viewedAt: optional(array(time, { lengthMax: limits.grantViewsMax })),
};
export const grantReply = object(grantFields);
export type GrantReply = Infer<typeof grantReply>;

/** One page of `grant.list` (the owner's) or `grant.inbox` (the recipient's). */
export const grantListReply = object({
  grants: array(grantReply, { lengthMax: limits.listPageMax }),
  next: optional(pageCursor),
});

/** `grant.view`: one view spent, share A and this view's share B sealed to the recipient, and the copy to fetch. */
export const viewReply = object({
  ...grantFields,
  shareA: bytes({ lengthMin: 1, lengthMax: 256 }),
  shareB: bytes({ lengthMin: 1, lengthMax: 256 }),
  copy: object({
    image: imageId,
    bytes: integer({ min: 0, max: limits.objectBytesMax }),
    /** The copy's name and type, sealed under its keys (`legacy`: a copy stored before names were sealed). */
    meta: optional(bytes({ lengthMin: 1, lengthMax: limits.objectMetaSealedBytesMax })),
    legacy: optional(legacyMeta),
    contentHash: bytes({ lengthMin: 32, lengthMax: 32 }),
    partBytes: optional(integer({ min: 1, max: limits.coverPartBytesMax })),
    parts: array(manifestPart, { lengthMin: 1, lengthMax: limits.partsPerObjectMax }),
  }),
  tickets: nodeTickets,
});
export type ViewReply = Infer<typeof viewReply>;

/** `user.publicKey`: the key a grant's share A is sealed to. */
export const publicKeyReply = object({ user: username, publicKey: bytes({ lengthMin: 32, lengthMax: 32 }) });

/** One page of `peer.online`: users online now, each with the objects they show. */
export const onlineReply = object({
  users: array(
    object({
      user: username,
      lastSeenAt: time,
      images: array(
        object({ image: imageId, name: objectName, bytes: integer({ min: 0 }), preview: boolean() }),
        { lengthMax: limits.discoverablePerUserMax },
      ),
    }),
    { lengthMax: limits.onlinePageMax },
  ),
  next: optional(pageCursor),
});

const reference = string({ lengthMin: 1, lengthMax: 255 });
/** What the request and discovery commands take. */
export const sharingRequests = {
  plain: object(authenticated),
  online: object({
    ...authenticated,
    /** One user only: found however many others are online. */
    of: optional(username),
    after: optional(pageCursor),
    limit: optional(integer({ min: 1, max: limits.onlinePageMax })),
  }),
  list: object({
    ...authenticated,
    after: optional(pageCursor),
    limit: optional(integer({ min: 1, max: limits.listPageMax })),
  }),
  publicKey: object({ ...authenticated, of: username }),
  /** `name`: what users who find the owner see it as; the servers cannot read the object's own. */
  discoverable: object({ ...authenticated, image: imageId, discoverable: boolean(), name: optional(objectName) }),
  ask: object({ ...authenticated, owner: username, image: reference }),
  request: object({ ...authenticated, request: sharingId }),
};

/** What the grant commands take. */
export const grantRequests = {
  plain: object(authenticated),
  list: object({
    ...authenticated,
    after: optional(pageCursor),
    limit: optional(integer({ min: 1, max: limits.grantsPageMax })),
  }),
  issue: object({
    ...authenticated,
    request: sharingId,
    grant: sharingId,
    views: integer({ min: 1, max: limits.grantViewsMax }),
    expiresAt: integer({ min: 0 }),
    image: imageId,
    shareA: bytes({ lengthMin: 1, lengthMax: 256 }),
    shareB: bytes({ lengthMin: 32, lengthMax: 32 }),
  }),
  view: object({ ...authenticated, grant: sharingId, view: sharingId }),
  grant: object({ ...authenticated, grant: sharingId }),
};

const publicKey = bytes({ lengthMin: 32, lengthMax: 32 });
/** What a user's peer says of itself (`peer.presence`) and what `peer.preview` asks for. */
export const presenceRequests = {
  presence: object({ ...authenticated, state: oneOf(["online", "stopped"]), noteKey: publicKey, answerKey: publicKey }),
  preview: object({ ...authenticated, of: username, image: sharingId }),
};
/** A peer's answer to a preview request: the PNG, signed with its answer key. */
export const previewAnswer = object({
  png: bytes({ lengthMin: 8, lengthMax: limits.previewBytesMax }),
  signature: bytes({ lengthMin: 64, lengthMax: 64 }),
});
