/**
 * Grants, by id: who may see what, how many views are left, when each view was spent, and
 * whether the grant is closed (views spent, expired or revoked) and shredded (the cluster's
 * share deleted, the copy removed). `veil state grants --at` shows views left at any moment.
 */
import { type GrantEvent, grantEvents, type Infer, type VeilEvent } from "../events/mod.ts";
import type { Projection } from "./projection.ts";

export type GrantState = Infer<(typeof grantEvents)["GrantIssued"]["data"]> & {
  readonly issuedAt: number;
  readonly viewsLeft: number;
  /** When each view was spent: the owner's receipt. */
  readonly viewedAt: readonly number[];
  /** The ids of the view attempts that spent a view, so a replayed attempt is known. */
  readonly viewIds: readonly string[];
  readonly status: "open" | "closed";
  readonly closedReason?: Infer<(typeof grantEvents)["GrantClosed"]["data"]>["reason"];
  readonly closedAt?: number;
  readonly shredded: boolean;
};

export interface GrantsState {
  readonly grants: Readonly<Record<string, GrantState>>;
}

function isGrantEvent(event: VeilEvent): event is GrantEvent {
  return Object.hasOwn(grantEvents, event.type);
}

export const grantsProjection: Projection<GrantsState> = {
  name: "grants",
  description: "grants: owner, recipient, object, views left and when each was spent, expiry, closed and shredded",
  version: 1,
  initial: () => ({ grants: {} }),
  evolve(state, event) {
    if (!isGrantEvent(event)) return state;
    const id = event.data.grant;
    const known = Object.hasOwn(state.grants, id) ? state.grants[id] : undefined;
    const changed = (grant: GrantState) => ({ grants: { ...state.grants, [id]: grant } });
    switch (event.type) {
      case "GrantIssued":
        if (known) return state;
        return changed({
          ...event.data,
          issuedAt: event.at,
          viewsLeft: event.data.views,
          viewedAt: [],
          viewIds: [],
          status: "open",
          shredded: false,
        });
      case "ViewConsumed":
        if (known?.status !== "open" || known.viewsLeft === 0) return state;
        return changed({
          ...known,
          viewsLeft: event.data.viewsLeft,
          viewedAt: [...known.viewedAt, event.at],
          viewIds: [...known.viewIds, event.data.view],
        });
      case "GrantClosed":
        if (known?.status !== "open") return state;
        return changed({ ...known, status: "closed", closedReason: event.data.reason, closedAt: event.at });
      case "GrantShredded":
        if (!known) return state;
        return changed({ ...known, shredded: true });
      default:
        return event satisfies never;
    }
  },
};

export const grantOf = (state: GrantsState, id: string): GrantState | undefined =>
  Object.hasOwn(state.grants, id) ? state.grants[id] : undefined;
