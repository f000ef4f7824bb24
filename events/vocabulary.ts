/**
 * The whole vocabulary: every event type veil knows. A type missing here is an
 * "unknown type" to every reader, so each aggregate's events are registered once, here.
 */
import { type ClusterEvent, clusterEvents } from "./cluster.ts";
import { createEvent, type Envelope, type EventOrigin } from "./envelope.ts";
import type { Infer } from "./schema.ts";
import { type ImageEvent, imageEvents } from "./image.ts";
import { type GrantEvent, grantEvents, type RequestEvent, requestEvents } from "./sharing.ts";
import { type UserEvent, userEvents } from "./user.ts";

export const vocabulary = {
  ...clusterEvents,
  ...userEvents,
  ...imageEvents,
  ...requestEvents,
  ...grantEvents,
} as const;

export type Vocabulary = typeof vocabulary;
export type VeilEvent = ClusterEvent | UserEvent | ImageEvent | RequestEvent | GrantEvent;
export type VeilEventType = VeilEvent["type"];

/** Builds a current-version event of the vocabulary. */
export function veilEvent<Type extends VeilEventType>(
  type: Type,
  data: Infer<Vocabulary[Type]["data"]>,
  origin: EventOrigin,
): Envelope<Type, Infer<Vocabulary[Type]["data"]>> {
  return createEvent(vocabulary, type, data, origin);
}
