/**
 * Requests for objects, by id: who asked whom for what, and what became of it (pending,
 * approved with a grant, denied, expired). Pending requests past their expiry are still
 * pending here until the leader records `RequestExpired`; readers judge expiry by the time.
 */
import { type Infer, type RequestEvent, requestEvents, type VeilEvent } from "../events/mod.ts";
import type { Projection } from "./projection.ts";

export type RequestStatus = "pending" | "approved" | "denied" | "expired";

export type RequestState = Infer<(typeof requestEvents)["AccessRequested"]["data"]> & {
  readonly requestedAt: number;
  readonly status: RequestStatus;
  readonly decidedAt?: number;
  readonly grant?: string;
};

export interface RequestsState {
  readonly requests: Readonly<Record<string, RequestState>>;
}

function isRequestEvent(event: VeilEvent): event is RequestEvent {
  return Object.hasOwn(requestEvents, event.type);
}

export const requestsProjection: Projection<RequestsState> = {
  name: "requests",
  description: "requests for objects: who asked whom for what, and whether it was approved, denied or expired",
  version: 1,
  initial: () => ({ requests: {} }),
  evolve(state, event) {
    if (!isRequestEvent(event)) return state;
    const id = event.data.request;
    const known = Object.hasOwn(state.requests, id) ? state.requests[id] : undefined;
    const decided = (changes: Partial<RequestState>) =>
      known?.status === "pending"
        ? { requests: { ...state.requests, [id]: { ...known, ...changes, decidedAt: event.at } } }
        : state;
    switch (event.type) {
      case "AccessRequested":
        if (known) return state;
        return {
          requests: { ...state.requests, [id]: { ...event.data, requestedAt: event.at, status: "pending" } },
        };
      case "RequestApproved":
        return decided({ status: "approved", grant: event.data.grant });
      case "RequestDenied":
        return decided({ status: "denied" });
      case "RequestExpired":
        return decided({ status: "expired" });
      default:
        return event satisfies never;
    }
  },
};

export const requestOf = (state: RequestsState, id: string): RequestState | undefined =>
  Object.hasOwn(state.requests, id) ? state.requests[id] : undefined;
