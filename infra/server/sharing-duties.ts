/**
 * What sharing commands and the leader's sweep both do: read an aggregate at its latest
 * sequence, tell a user's peer what happened, and shred a closed grant (delete the cluster's
 * share, remove the grant's copy so garbage collection frees its chunks, record
 * `GrantShredded`). The sweep runs while this server leads: it expires requests and grants
 * past their time, finishes approvals a crash interrupted, and shreds what is closed.
 */
import type { Bus, Clock, EventLog, GrantShareStore, IdSource, Logger } from "../../actors/ports.ts";
import { decideCloseGrant, decideExpireRequest, type SharingEventMaker } from "../../actors/server/sharing/decider.ts";
import {
  ConcurrencyError,
  grantSubject,
  imageSubject,
  limits,
  notificationSubject,
  requestSubject,
  veilEvent,
} from "../../events/mod.ts";
import {
  type GrantsState,
  type GrantState,
  imageOf,
  type ImagesState,
  type RequestsState,
} from "../../projections/mod.ts";
import type { Projector } from "../projector.ts";

export interface SharingDeps {
  readonly nodeId: string;
  readonly bus: Bus;
  readonly log: EventLog;
  readonly clock: Clock;
  readonly ids: IdSource;
  readonly logger: Logger;
  readonly images: Projector<ImagesState>;
  readonly requests: Projector<RequestsState>;
  readonly grants: Projector<GrantsState>;
  readonly shares: GrantShareStore;
}

export function sharingDuties(deps: SharingDeps) {
  const { nodeId, bus, log, clock, ids, logger, images, requests, grants, shares } = deps;
  const make: SharingEventMaker = (type, data) =>
    veilEvent(type, data as never, { id: ids.next(), at: clock.now(), by: nodeId }) as ReturnType<SharingEventMaker>;

  /** The aggregate's last sequence, once `projector` has applied it. */
  async function latest(subject: string, projector: Projector<unknown>): Promise<number> {
    const seq = (await log.readLast(subject))?.seq ?? 0;
    await projector.waitFor(seq, limits.commandTimeoutMs);
    return seq;
  }

  /** Best effort: a peer that is not running finds the news in `veil requests` and `veil inbox`. */
  function notify(user: string, note: { kind: string; text: string; request?: string; grant?: string }) {
    try {
      bus.publish(notificationSubject(user), { ...note, at: clock.now() });
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
    const seq = await latest(grantSubject(grant.grant), grants);
    try {
      await log.append(grantSubject(grant.grant), [make("GrantShredded", { grant: grant.grant, image: grant.image })], {
        expectedSubjectSeq: seq,
      });
    } catch (error) {
      // Someone else recorded it (or the grant changed): the next sweep looks again.
      if (!(error instanceof ConcurrencyError)) throw error;
    }
  }

  /** Closes a grant whose last view was just spent, then shreds it; the sweep finishes what this does not. */
  async function closeSpent(grant: GrantState, seq: number): Promise<void> {
    const events = decideCloseGrant(grant, clock.now(), make);
    if (events.length === 0) return;
    try {
      const [closed] = await log.append(grantSubject(grant.grant), events, { expectedSubjectSeq: seq });
      await grants.waitFor(closed!, limits.commandTimeoutMs);
    } catch (error) {
      if (error instanceof ConcurrencyError) return;
      throw error;
    }
    await shred(Object.hasOwn(grants.state.grants, grant.grant) ? grants.state.grants[grant.grant]! : grant);
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
      // Only a grant that stands finishes an approval; one without its share (a crash between
      // recording it and storing the share) is closed, and the request stays open.
      if (issued && (issued.status !== "open" || !(await shares.get(issued.grant)))) {
        if (issued.status === "open") {
          const seq = await latest(grantSubject(issued.grant), grants);
          await log.append(grantSubject(issued.grant), [
            make("GrantClosed", { grant: issued.grant, reason: "revoked" }),
          ], {
            expectedSubjectSeq: seq,
          }).catch((error) => (error instanceof ConcurrencyError ? undefined : Promise.reject(error)));
          done++;
        }
        issued = undefined;
      }
      const events = issued
        ? [make("RequestApproved", { request: request.request, grant: issued.grant })]
        : decideExpireRequest(request, now, make);
      if (events.length === 0) continue;
      const seq = await latest(requestSubject(request.request), requests);
      await log.append(requestSubject(request.request), events, { expectedSubjectSeq: seq }).then(
        () => {
          done++;
          if (!issued) {
            notify(request.from, {
              kind: "request-expired",
              text: `your request for ${request.owner}'s ${request.name} expired unanswered`,
              request: request.request,
            });
          }
        },
        (error) => {
          if (!(error instanceof ConcurrencyError)) throw error;
        },
      );
    }
    for (const grant of Object.values(grants.state.grants)) {
      if (!budget()) return done;
      const events = decideCloseGrant(grant, now, make);
      if (events.length > 0) {
        const seq = await latest(grantSubject(grant.grant), grants);
        const closed = await log.append(grantSubject(grant.grant), events, { expectedSubjectSeq: seq }).then(
          () => true,
          (error) => (error instanceof ConcurrencyError ? false : Promise.reject(error)),
        );
        if (closed) {
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

  return { make, latest, notify, shred, closeSpent, closedNote, sweep };
}

export type SharingDuties = ReturnType<typeof sharingDuties>;
