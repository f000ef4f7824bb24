/**
 * What sharing commands and the leader's sweep both do: read an aggregate at its latest
 * sequence, tell a user's peer what happened, and shred a closed grant (delete the cluster's
 * share, remove the grant's copy so garbage collection frees its chunks, record
 * `GrantShredded`). The sweep runs while this server leads: it expires requests and grants
 * past their time, finishes approvals a crash interrupted, and shreds what is closed.
 */
import type { Bus, Clock, EventLog, GrantShareStore, IdSource, Logger, RandomSource, Timers } from "../../ports.ts";
import { decideCloseGrant, decideExpireRequest, type SharingEventMaker } from "./decider.ts";
import {
  ConcurrencyError,
  grantSubject,
  imageSubject,
  limits,
  notificationSubject,
  requestSubject,
  veilEvent,
} from "../../../events/mod.ts";
import {
  grantOf,
  type GrantsState,
  type GrantState,
  imageOf,
  type ImagesState,
  type RequestsState,
} from "../../../projections/mod.ts";
import { atLatest, decideAndAppend as decideAndAppendTo } from "../decide-and-append.ts";
import type { Projector } from "../projector.ts";
import type { HealthState } from "../../../projections/health.ts";
import { sealNote } from "../../peer/presence.ts";

export interface SharingDeps {
  readonly nodeId: string;
  readonly bus: Bus;
  readonly log: EventLog;
  readonly clock: Clock;
  readonly timers: Timers;
  readonly ids: IdSource;
  readonly logger: Logger;
  readonly images: Projector<ImagesState>;
  readonly requests: Projector<RequestsState>;
  readonly grants: Projector<GrantsState>;
  readonly shares: GrantShareStore;
  /** Spreads out the retries of writers racing for one aggregate. */
  readonly random: RandomSource;
  /** Who is online, with the key each peer's notifications are sealed to. */
  readonly presence: () => HealthState;
}

export function sharingDuties(deps: SharingDeps) {
  const { nodeId, bus, log, clock, timers, ids, logger, images, requests, grants, shares, random } = deps;
  const make: SharingEventMaker = (type, data) =>
    veilEvent(type, data as never, { id: ids.next(), at: clock.now(), by: nodeId }) as ReturnType<SharingEventMaker>;

  /** The aggregate's last sequence, once `projector` has applied it. */
  const latest = async (subject: string, projector: Projector<unknown>) =>
    (await atLatest(log, subject, projector)()).seq;

  /**
   * Appends at the aggregate's sequence (`seq`, or its latest): the stored sequence, or
   * undefined when someone else wrote first (the next round, or its writer, sees to it).
   */
  async function appendIfCurrent(
    subject: string,
    projector: Projector<unknown>,
    events: readonly ReturnType<SharingEventMaker>[],
    seq?: number,
  ): Promise<number | undefined> {
    const expectedSubjectSeq = seq ?? (await latest(subject, projector));
    try {
      return (await log.append(subject, events, { expectedSubjectSeq })).at(-1);
    } catch (error) {
      if (error instanceof ConcurrencyError) return undefined;
      throw error;
    }
  }

  /** Decides against the aggregate's latest state and appends under its sequence, again on a conflict. */
  async function decideAndAppend(
    subject: string,
    projector: Projector<unknown>,
    decide: () => readonly ReturnType<SharingEventMaker>[] | Promise<readonly ReturnType<SharingEventMaker>[]>,
    retries: number = limits.decisionRetriesMax,
  ): Promise<number> {
    const { seq } = await decideAndAppendTo({
      log,
      subject,
      retries,
      load: atLatest(log, subject, projector),
      decide: async () => ({ events: await decide() }),
      applied: (seq) => projector.waitFor(seq, limits.commandTimeoutMs),
      // Many viewers of one grant race for its sequence: spread the next tries out.
      pause: (attempt) =>
        new Promise((resolve) => timers.setTimeout(() => resolve(), random.bytes(1)[0]! % (5 + 5 * attempt))),
    });
    return seq;
  }

  /** Best effort: a peer that is not running finds the news in `veil requests` and `veil inbox`. */
  function notify(user: string, note: { kind: string; text: string; request?: string; grant?: string }) {
    try {
      // Only a peer online now gets it, sealed to the key it went online with: nobody else can read it.
      const noteKey = deps.presence().nodes[user]?.noteKey;
      if (!noteKey) return;
      bus.publish(notificationSubject(user), { sealed: sealNote(noteKey, user, { ...note, at: clock.now() }, random) });
    } catch (error) {
      logger.debug("notification not sent", { reason: (error as Error).message });
    }
  }

  /** Deletes a closed grant's share and its copy, and records it; safe to repeat. */
  async function shred(grant: GrantState): Promise<void> {
    if (grant.status !== "closed" || grant.shredded) return;
    await shares.delete(grant.grant);
    const copy = imageOf(images.state, grant.image);
    if (copy) {
      await log.append(imageSubject(copy.image), [
        veilEvent("ImageRemoved", { owner: copy.owner, image: copy.image }, {
          id: ids.next(),
          at: clock.now(),
          by: nodeId,
        }),
      ]);
    }
    // Someone else recorded it (or the grant changed): the next sweep looks again.
    await appendIfCurrent(grantSubject(grant.grant), grants, [
      make("GrantShredded", { grant: grant.grant, image: grant.image }),
    ]);
  }

  /** Closes a grant whose last view was just spent, then shreds it; the sweep finishes what this does not. */
  async function closeSpent(grant: GrantState, seq: number): Promise<void> {
    const events = decideCloseGrant(grant, clock.now(), make);
    if (events.length === 0) return;
    const closed = await appendIfCurrent(grantSubject(grant.grant), grants, events, seq);
    if (closed === undefined) return;
    await grants.waitFor(closed, limits.commandTimeoutMs);
    await shred(grantOf(grants.state, grant.grant) ?? grant);
  }

  const closedNote = (grant: GrantState, reason: string) => ({
    kind: "grant-closed",
    text: `grant ${grant.grant} (${grant.name}, ${grant.owner} to ${grant.recipient}) closed: ${reason}`,
    grant: grant.grant,
  });

  /** One round of the leader's sweep; returns how many things it did. */
  async function sweep(stillLeading: () => boolean): Promise<number> {
    await Promise.all([requests, grants, images].map((projector) => projector.caughtUp()));
    const now = clock.now();
    let done = 0;
    const budget = () => stillLeading() && done < limits.sharingSweepActionsMax;
    const grantsByRequest = new Map(Object.values(grants.state.grants).map((grant) => [grant.request, grant]));
    for (const request of Object.values(requests.state.requests)) {
      if (!budget()) return done;
      if (request.status !== "pending") continue;
      let issued = grantsByRequest.get(request.request);
      // Only a grant that stands (open, its share stored) finishes an approval; one without its
      // share (a crash between recording it and storing the share) is closed, and the request
      // stays open. A grant younger than any grant.issue can take is not judged at all: its share
      // may be on its way (closing it ended an approval its owner was told had succeeded, and
      // approving it left a request approved with a grant nobody could open).
      if (issued) {
        const stands = issued.status === "open" && (await shares.get(issued.grant)) !== undefined;
        if (!stands && issued.status === "open" && now - issued.issuedAt < limits.grantIssueGraceMs) continue;
        if (!stands) {
          if (issued.status === "open") {
            await appendIfCurrent(grantSubject(issued.grant), grants, [
              make("GrantClosed", { grant: issued.grant, reason: "revoked" }),
            ]);
            done++;
          }
          issued = undefined;
        }
      }
      const events = issued
        ? [make("RequestApproved", { request: request.request, grant: issued.grant })]
        : decideExpireRequest(request, now, make);
      if (events.length === 0) continue;
      if ((await appendIfCurrent(requestSubject(request.request), requests, events)) === undefined) continue;
      done++;
      if (!issued) {
        notify(request.from, {
          kind: "request-expired",
          text: `your request for ${request.owner}'s ${request.name} expired unanswered`,
          request: request.request,
        });
      }
    }
    for (const grant of Object.values(grants.state.grants)) {
      if (!budget()) return done;
      const events = decideCloseGrant(grant, now, make);
      if (events.length > 0) {
        if ((await appendIfCurrent(grantSubject(grant.grant), grants, events)) !== undefined) {
          done++;
          const reason = grant.viewsLeft === 0 ? "no views left" : "expired";
          for (const user of [grant.owner, grant.recipient]) notify(user, closedNote(grant, reason));
        }
        continue;
      }
      if (grant.status === "closed" && !grant.shredded) {
        await shred(grant);
        done++;
      }
    }
    return done;
  }

  return { make, latest, decideAndAppend, notify, shred, closeSpent, closedNote, sweep };
}

export type SharingDuties = ReturnType<typeof sharingDuties>;
