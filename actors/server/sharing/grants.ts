/**
 * Grant commands (`grant.*`), for logged-in users: issue (the owner's approval, its copy
 * stored already), view, revoke, and the lists of grants made and received. Each decision
 * is made against the grant at its latest sequence and appended with that sequence
 * expected, so two servers cannot both spend the last view: the loser reloads and decides
 * again. A view is spent in the log before the cluster's share is released, sealed to the
 * recipient's key, for that view only.
 */
import { grantCopyId, sealShareTo, shareBContext } from "../../peer/grant.ts";
import type { ClusterSecrets } from "../accounts/secrets.ts";
import type { TicketIssuer } from "../../storage-node/tickets.ts";
import { checkAnswerable, decideRevoke, decideView } from "./decider.ts";
import { pastTime } from "../expiry.ts";
import {
  ConcurrencyError,
  ConflictError,
  grantRequests,
  grantSubject,
  limits,
  NotFoundError,
  pageOf,
  requestSubject,
  timeKey,
  ValidationError,
} from "../../../events/mod.ts";
import {
  grantOf,
  type GrantState,
  type ImageManifest,
  imageOf,
  requestOf,
  type UsersState,
} from "../../../projections/mod.ts";
import type { Projector } from "../projector.ts";
import { type CommandHandler } from "../commands.ts";
import { userSessions } from "../accounts/sessions.ts";
import type { SharingDeps, SharingDuties } from "./duties.ts";

const requests = grantRequests;

/** A grant as its parties see it (share A goes only with a view, to the recipient). */
function grantView(grant: GrantState, now: number, forOwner: boolean) {
  // Shown closed when a view would be refused: past its time by more than clocks may differ.
  const status = grant.status === "open" && pastTime(grant.expiresAt, now) ? "closed" : grant.status;
  return {
    grant: grant.grant,
    owner: grant.owner,
    recipient: grant.recipient,
    name: grant.name,
    bytes: grant.bytes,
    // Only v1 grants recorded a type; the copy's own is sealed, for the recipient to open.
    ...(grant.type ? { type: grant.type } : {}),
    views: grant.views,
    viewsLeft: status === "open" ? grant.viewsLeft : 0,
    expiresAt: grant.expiresAt,
    issuedAt: grant.issuedAt,
    status,
    ...(grant.closedReason ? { closedReason: grant.closedReason } : {}),
    ...(forOwner ? { viewedAt: grant.viewedAt } : {}),
  };
}

export function grantCommands(
  deps: SharingDeps & {
    users: Projector<UsersState>;
    secrets: ClusterSecrets;
    duties: SharingDuties;
    tickets: TicketIssuer;
  },
): Record<string, CommandHandler> {
  const { log, clock, images, users, random, secrets, shares, duties, logger, tickets } = deps;
  const { session } = userSessions({ log, users, clock });
  const { make, latest, notify, shred, closeSpent, closedNote, decideAndAppend } = duties;

  /** The caller's grants on one side, oldest first; the owner's view carries each view's time. */
  async function grantsOf(data: unknown, side: "owner" | "recipient") {
    const request = requests.list.parse(data);
    await session(request);
    await deps.grants.caughtUp();
    const now = clock.now();
    const theirs = Object.values(deps.grants.state.grants).filter((grant) => grant[side] === request.user);
    const page = pageOf(theirs, (grant) => `${timeKey(grant.issuedAt)}:${grant.grant}`, {
      after: request.after,
      limit: request.limit ?? limits.grantsPageMax,
    });
    return {
      grants: page.items.map((grant) => grantView(grant, now, side === "owner")),
      ...(page.next ? { next: page.next } : {}),
    };
  }

  return {
    /**
     * The owner's approval: its client has stored the grant's copy already. The grant is
     * recorded first (its subject must be new: that claims the id), then the share goes to
     * the KV bucket sealed with the cluster key, then the request is marked approved. A grant
     * whose share could not be stored is closed at once; a crash before the approval is
     * finished by the leader's sweep, which approves a pending request that has a grant.
     */
    "grant.issue": async (data) => {
      const issue = requests.issue.parse(data);
      await session(issue);
      const now = clock.now();
      if (issue.expiresAt <= now || issue.expiresAt > now + limits.durationMsMax) {
        throw new ValidationError("a grant expires in the future, and within a year");
      }
      await latest(requestSubject(issue.request), deps.requests);
      const request = checkAnswerable(requestOf(deps.requests.state, issue.request), issue.request, issue.user, now);
      const parties = { grant: issue.grant, owner: issue.user, recipient: request.from };
      await images.caughtUp();
      const copy = imageOf(images.state, issue.image);
      if (!copy || copy.owner !== issue.user || copy.grant !== issue.grant || copy.image !== grantCopyId(parties)) {
        throw new ValidationError(`object ${issue.image} is not a copy made for grant ${issue.grant}`);
      }
      try {
        await log.append(grantSubject(issue.grant), [
          make("GrantIssued", {
            grant: issue.grant,
            request: issue.request,
            owner: issue.user,
            recipient: request.from,
            image: copy.image,
            name: request.name,
            bytes: copy.bytes,
            views: issue.views,
            expiresAt: issue.expiresAt,
            shareA: issue.shareA,
          }),
        ], { expectedSubjectSeq: 0 });
      } catch (error) {
        if (error instanceof ConcurrencyError) throw new ConflictError(`grant ${issue.grant} exists already`);
        throw error;
      }
      const withdraw = async () => {
        const [seq] = await log.append(grantSubject(issue.grant), [
          make("GrantClosed", { grant: issue.grant, reason: "revoked" }),
        ]);
        await deps.grants.waitFor(seq!, limits.commandTimeoutMs);
        await shred(grantOf(deps.grants.state, issue.grant)!).catch(() => {});
      };
      try {
        await shares.put(issue.grant, secrets.seal("grant-share", issue.grant, issue.shareB));
      } catch (error) {
        await withdraw().catch(() => {});
        throw error;
      }
      const approvedWithThis = () => {
        const current = requestOf(deps.requests.state, issue.request);
        return current?.status === "approved" && current.grant === issue.grant;
      };
      try {
        await decideAndAppend(requestSubject(issue.request), deps.requests, async () => {
          checkAnswerable(requestOf(deps.requests.state, issue.request), issue.request, issue.user, clock.now());
          // Never an approval with a grant that no longer stands (the sweep closed one whose share was late).
          await latest(grantSubject(issue.grant), deps.grants);
          if (grantOf(deps.grants.state, issue.grant)?.status !== "open") {
            throw new ConflictError(`grant ${issue.grant} was closed while it was issued; nothing was shared`);
          }
          return [make("RequestApproved", { request: issue.request, grant: issue.grant })];
        });
      } catch (error) {
        await latest(requestSubject(issue.request), deps.requests).catch(() => {});
        // The sweep may have recorded this very approval meanwhile: that is success.
        if (!approvedWithThis()) {
          // Answered otherwise meanwhile (denied, expired): the grant must not stand. Any other
          // failure leaves it to the sweep, which approves a request that has a grant.
          if (error instanceof ConflictError) await withdraw();
          throw error;
        }
      }
      await latest(grantSubject(issue.grant), deps.grants);
      const grant = grantOf(deps.grants.state, issue.grant)!;
      // Never an approval that does not stand: a grant closed meanwhile is said to be.
      if (grant.status !== "open") {
        throw new ConflictError(`grant ${issue.grant} was closed while it was issued; nothing was shared`);
      }
      notify(request.from, {
        kind: "grant",
        text: `${issue.user} approved your request for ${request.name}: ${issue.views} view${
          issue.views === 1 ? "" : "s"
        } (grant ${issue.grant}); veil view ${issue.grant}`,
        grant: issue.grant,
      });
      return grantView(grant, clock.now(), true);
    },

    /**
     * One view: everything that can fail is checked first (the grant, the cluster's share,
     * the copy), then the view is spent in the log (the grant's expected sequence makes
     * concurrent viewers queue), then the share is released sealed to the recipient for this
     * view, with what the client needs to fetch and open the copy.
     */
    "grant.view": async (data) => {
      const asked = requests.view.parse(data);
      const { state: viewer } = await session(asked);
      await images.caughtUp();
      let shareB: Uint8Array | undefined;
      let copy: ImageManifest | undefined;
      let viewsLeft = 0;
      const seq = await decideAndAppend(grantSubject(asked.grant), deps.grants, async () => {
        const grant = grantOf(deps.grants.state, asked.grant);
        const events = decideView(grant, { ...asked, viewer: asked.user, now: clock.now() }, make);
        const sealed = await shares.get(asked.grant);
        if (!sealed) throw new ConflictError(`grant ${asked.grant} is closed: its key is gone`);
        shareB = secrets.open("grant-share", asked.grant, sealed);
        copy = imageOf(images.state, grant!.image);
        if (!copy) throw new NotFoundError(`the copy of grant ${asked.grant} is gone`);
        viewsLeft = events[0]!.type === "ViewConsumed" ? events[0]!.data.viewsLeft : 0;
        return events;
      }, limits.viewRetriesMax);
      const grant = grantOf(deps.grants.state, asked.grant)!;
      const parties = { grant: grant.grant, owner: grant.owner, recipient: grant.recipient };
      const manifest = copy!;
      const sealedToViewer = sealShareTo(viewer.publicKey, shareB!, shareBContext(parties, asked.view), random);
      shareB!.fill(0);
      if (viewsLeft === 0) {
        await closeSpent(grant, seq).catch((error: Error) =>
          logger.warn("a spent grant is closed by the next sweep", { reason: error.message })
        );
        for (const user of [grant.owner, grant.recipient]) notify(user, closedNote(grant, "no views left"));
      } else {
        notify(grant.owner, {
          kind: "view",
          text: `${grant.recipient} viewed ${grant.name}: ${viewsLeft} view${viewsLeft === 1 ? "" : "s"} left`,
          grant: grant.grant,
        });
      }
      return {
        ...grantView(grant, clock.now(), false),
        viewsLeft,
        shareA: grant.shareA,
        shareB: sealedToViewer,
        copy: {
          image: manifest.image,
          bytes: manifest.bytes,
          // Sealed under the copy's keys, which only the recipient puts together.
          ...(manifest.meta ? { meta: manifest.meta } : {}),
          ...(manifest.legacy ? { legacy: manifest.legacy } : {}),
          contentHash: manifest.contentHash,
          ...(manifest.partBytes === undefined ? {} : { partBytes: manifest.partBytes }),
          parts: manifest.parts,
        },
        // Only the recipient gets here, once a view is spent: the copy's chunks are theirs to fetch for this view.
        tickets: tickets.get(manifest.parts.flatMap((part) => part.chunks)),
      };
    },

    "grant.revoke": async (data) => {
      const asked = requests.grant.parse(data);
      await session(asked);
      await decideAndAppend(
        grantSubject(asked.grant),
        deps.grants,
        () => decideRevoke(grantOf(deps.grants.state, asked.grant), asked.grant, asked.user, make),
      );
      const grant = grantOf(deps.grants.state, asked.grant)!;
      await shred(grant).catch((error: Error) =>
        logger.warn("a revoked grant is shredded by the next sweep", { reason: error.message })
      );
      notify(grant.recipient, closedNote(grant, "revoked"));
      return grantView(grant, clock.now(), true);
    },

    /** Grants made to the caller. */
    "grant.inbox": (data) => grantsOf(data, "recipient"),
    /** Grants the caller made, with each view's time. */
    "grant.list": (data) => grantsOf(data, "owner"),
  };
}
