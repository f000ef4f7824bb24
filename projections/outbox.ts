/**
 * The outbox: notifications raised by account events and not yet delivered. A login from
 * a new device, a locked account and an emailed one-time code each raise one (for users
 * with an email), named by the id of the event that raised it; `NotificationSent` takes it
 * out. The mailer works from this list, so a mail lost to a crash is sent after a restart.
 */
import { type LoginLane, type VeilEvent } from "../events/mod.ts";
import type { Projection } from "./projection.ts";
import { isUserEvent } from "./users.ts";

export type NotificationKind = "new-device" | "account-locked" | "email-code";

export interface Notification {
  /** The id of the event that raised it. */
  readonly id: string;
  readonly user: string;
  readonly kind: NotificationKind;
  readonly at: number;
  /** A new device's name and address, sealed with the cluster key: the mailer opens them (v1: in the clear). */
  readonly deviceSealed?: Uint8Array;
  readonly addressSealed?: Uint8Array;
  readonly deviceName?: string;
  readonly address?: string;
  readonly lockedUntil?: number;
  /** Which logins a lock refuses (see `loginLanes`). */
  readonly lane?: LoginLane;
  /** An emailed code, sealed with the cluster key: only the mailer opens it. */
  readonly codeSealed?: Uint8Array;
}

export interface OutboxState {
  /** Users who gave an email address: only they get mail. */
  readonly reachable: Readonly<Record<string, true>>;
  readonly pending: Readonly<Record<string, Notification>>;
}

export const outboxProjection: Projection<OutboxState> = {
  name: "outbox",
  description: "notifications (new device, locked account, emailed codes) waiting for the mailer",
  // 2: a lock says which lane it locked.
  version: 2,
  initial: () => ({ reachable: {}, pending: {} }),
  evolve(state, event: VeilEvent) {
    if (!isUserEvent(event)) return state;
    const user = event.data.user;
    const raise = (notification: Omit<Notification, "id" | "user" | "at">): OutboxState =>
      Object.hasOwn(state.reachable, user)
        ? { ...state, pending: { ...state.pending, [event.id]: { id: event.id, user, at: event.at, ...notification } } }
        : state;
    switch (event.type) {
      case "UserRegistered":
        return event.data.emailSealed ? { ...state, reachable: { ...state.reachable, [user]: true } } : state;
      case "UserDeleted": {
        const { [user]: _gone, ...reachable } = state.reachable;
        const pending = Object.fromEntries(Object.entries(state.pending).filter(([, item]) => item.user !== user));
        return { reachable, pending };
      }
      case "SessionStarted":
        return event.data.newDevice
          ? raise({
            kind: "new-device",
            ...(event.data.deviceSealed ? { deviceSealed: event.data.deviceSealed } : {}),
            ...(event.data.addressSealed ? { addressSealed: event.data.addressSealed } : {}),
            ...(event.data.deviceName !== undefined ? { deviceName: event.data.deviceName } : {}),
            ...(event.data.address ? { address: event.data.address } : {}),
          })
          : state;
      case "AccountLocked":
        return raise({ kind: "account-locked", lockedUntil: event.data.until, lane: event.data.lane });
      case "EmailCodeIssued":
        return raise({ kind: "email-code", codeSealed: event.data.codeSealed });
      case "NotificationSent": {
        if (!Object.hasOwn(state.pending, event.data.notification)) return state;
        const { [event.data.notification]: _sent, ...pending } = state.pending;
        return { ...state, pending };
      }
      default:
        return state;
    }
  },
};
