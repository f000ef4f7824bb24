/**
 * Sharing commands, for logged-in users: who is online and what they show, requests
 * (`request.*`), and grants (`grant.*`). Each decision is made against its aggregate at its
 * latest sequence and appended with that sequence expected, so two servers cannot both
 * spend the last view or both answer a request: the loser reloads and decides again. A view
 * is spent in the log before the cluster's share is released, sealed to the recipient's
 * key, for that view only.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import { grantCopyId, sealShareTo, shareBContext } from "../../actors/peer/grant.ts";
import type { RandomSource } from "../../actors/ports.ts";
import type { ClusterSecrets } from "../../actors/server/accounts/secrets.ts";
import {
  checkAnswerable,
  decideDeny,
  decideRequest,
  decideRevoke,
  decideView,
} from "../../actors/server/sharing/decider.ts";
import {
  boolean,
  BusyError,
  bytes,
  ConcurrencyError,
  ConflictError,
  grantSubject,
  imageId,
  imageSubject,
  integer,
  limits,
  NotFoundError,
  object,
  requestSubject,
  sharingId,
  string,
  username,
  ValidationError,
  veilEvent,
} from "../../events/mod.ts";
import {
  findImage,
  grantOf,
  type GrantState,
  type HealthState,
  type HeartbeatTimeouts,
  type ImageManifest,
  imageOf,
  imagesOf,
  isAlive,
  requestOf,
  type RequestState,
  userOf,
  type UsersState,
} from "../../projections/mod.ts";
import type { Projector } from "../projector.ts";
import type { CommandHandler } from "./commands.ts";
import { authenticated, userSessions } from "./sessions.ts";
import type { SharingDeps, SharingDuties } from "./sharing-duties.ts";

const reference = string({ lengthMin: 1, lengthMax: 255 });
const requests = {
  plain: object(authenticated),
  publicKey: object({ ...authenticated, of: username }),
  discoverable: object({ ...authenticated, image: reference, discoverable: boolean() }),
  ask: object({ ...authenticated, owner: username, image: reference }),
  request: object({ ...authenticated, request: sharingId }),
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

/** A request as its parties see it; a pending one past its time shows as expired. */
function requestView(request: RequestState, now: number) {
  const status = request.status === "pending" && now >= request.expiresAt ? "expired" : request.status;
  return {
    request: request.request,
    from: request.from,
    owner: request.owner,
    image: request.image,
    name: request.name,
    status,
    requestedAt: request.requestedAt,
    expiresAt: request.expiresAt,
    ...(request.decidedAt === undefined ? {} : { decidedAt: request.decidedAt }),
    ...(request.grant === undefined ? {} : { grant: request.grant }),
  };
}

/** A grant as its parties see it (share A goes only with a view, to the recipient). */
function grantView(grant: GrantState, now: number, forOwner: boolean) {
  const status = grant.status === "open" && now >= grant.expiresAt ? "closed" : grant.status;
  return {
    grant: grant.grant,
    owner: grant.owner,
    recipient: grant.recipient,
    name: grant.name,
    bytes: grant.bytes,
    type: grant.type,
    views: grant.views,
    viewsLeft: status === "open" ? grant.viewsLeft : 0,
    expiresAt: grant.expiresAt,
    issuedAt: grant.issuedAt,
    status,
    ...(grant.closedReason ? { closedReason: grant.closedReason } : {}),
    ...(forOwner ? { viewedAt: grant.viewedAt } : {}),
  };
}

export function sharingCommands(
  deps: SharingDeps & {
    users: Projector<UsersState>;
    secrets: ClusterSecrets;
    random: RandomSource;
    duties: SharingDuties;
    presence: () => HealthState;
    heartbeatTimeouts: HeartbeatTimeouts;
  },
): Record<string, CommandHandler> {
  const { nodeId, log, clock, ids, images, users, random, secrets, shares, duties, logger } = deps;
  const { session } = userSessions({ log, users, clock });
  const { make, latest, notify, shred, closeSpent, closedNote } = duties;
  const newId = () => bytesToHex(random.bytes(16));

  /** Decides against the aggregate's latest state and appends under its sequence, again on a conflict. */
  async function decideAndAppend(
    subject: string,
    projector: Projector<unknown>,
    decide: () => readonly ReturnType<typeof make>[] | Promise<readonly ReturnType<typeof make>[]>,
    retries: number = limits.decisionRetriesMax,
  ): Promise<number> {
    for (let attempt = 0; attempt < retries; attempt++) {
      const seq = await latest(subject, projector);
      const events = await decide();
      try {
        const appended = (await log.append(subject, events, { expectedSubjectSeq: seq })).at(-1)!;
        await projector.waitFor(appended, limits.commandTimeoutMs);
        return appended;
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
        // Many viewers of one grant race for its sequence: spread the next tries out.
        await new Promise((resolve) => setTimeout(resolve, random.bytes(1)[0]! % (5 + 5 * attempt)));
      }
    }
    throw new BusyError(`too many concurrent changes to ${subject}; retry`);
  }

  /** The caller's grants on one side, oldest first; the owner's view carries each view's time. */
  async function grantsOf(data: unknown, side: "owner" | "recipient") {
    const request = requests.plain.parse(data);
    await session(request);
    await deps.grants.caughtUp();
    const now = clock.now();
    return Object.values(deps.grants.state.grants)
      .filter((grant) => grant[side] === request.user)
      .sort((a, b) => a.issuedAt - b.issuedAt)
      .map((grant) => grantView(grant, now, side === "owner"));
  }

  return {
    /** Anyone's public key: what a grant for them is sealed to. */
    "user.publicKey": async (data) => {
      const request = requests.publicKey.parse(data);
      await session(request);
      const other = userOf(users.state, request.of);
      if (other?.status !== "active") throw new NotFoundError(`no user ${request.of}`);
      return { user: request.of, publicKey: other.publicKey };
    },

    "vault.discoverable": async (data) => {
      const request = requests.discoverable.parse(data);
      await session(request);
      await images.caughtUp();
      const image = findImage(images.state, request.user, request.image);
      if (!image) throw new NotFoundError(`no object ${JSON.stringify(request.image)} in your vault`);
      const seq = await log.append(imageSubject(image.image), [
        veilEvent("DiscoverabilityChanged", {
          owner: request.user,
          image: image.image,
          discoverable: request.discoverable,
        }, { id: ids.next(), at: clock.now(), by: nodeId }),
      ]);
      await images.waitFor(seq[0]!, limits.commandTimeoutMs).catch(() => {});
      return { image: image.image, name: image.name, discoverable: request.discoverable };
    },

    /** Users whose peers are online now (presence), and the objects each one shows. */
    "peer.online": async (data) => {
      const request = requests.plain.parse(data);
      await session(request);
      await images.caughtUp();
      const now = clock.now();
      return Object.entries(deps.presence().nodes)
        .filter(([user, view]) =>
          view.role === "peer" && view.state === "online" && user !== request.user &&
          isAlive(view, now, deps.heartbeatTimeouts)
        )
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([user, view]) => ({
          user,
          lastSeenAt: view.lastSeenAt,
          images: imagesOf(images.state, user)
            .filter((image) => image.discoverable)
            .slice(-limits.discoverablePerUserMax)
            .map((image) => ({
              image: image.image,
              name: image.name,
              bytes: image.bytes,
              type: image.type,
              preview: image.preview !== undefined,
            })),
        }));
    },

    "request.create": async (data) => {
      const ask = requests.ask.parse(data);
      await session(ask);
      await Promise.all([images.caughtUp(), deps.requests.caughtUp()]);
      const id = newId();
      const now = clock.now();
      const pendingFromAsker = Object.values(deps.requests.state.requests)
        .filter((request) => request.from === ask.user && request.status === "pending" && now < request.expiresAt)
        .length;
      const events = decideRequest({
        request: id,
        from: ask.user,
        owner: ask.owner,
        reference: ask.image,
        image: findImage(images.state, ask.owner, ask.image),
        pendingFromAsker,
        now,
      }, make);
      const [seq] = await log.append(requestSubject(id), events, { expectedSubjectSeq: 0 });
      await deps.requests.waitFor(seq!, limits.commandTimeoutMs);
      const created = requestOf(deps.requests.state, id)!;
      notify(ask.owner, {
        kind: "request",
        text:
          `${ask.user} asks to see ${created.name} (request ${id}); veil approve ${id} --views N, or veil deny ${id}`,
        request: id,
      });
      return requestView(created, now);
    },

    "request.list": async (data) => {
      const request = requests.plain.parse(data);
      await session(request);
      await deps.requests.caughtUp();
      const now = clock.now();
      const all = Object.values(deps.requests.state.requests).sort((a, b) => a.requestedAt - b.requestedAt);
      return {
        incoming: all.filter((one) => one.owner === request.user).map((one) => requestView(one, now)),
        outgoing: all.filter((one) => one.from === request.user).map((one) => requestView(one, now)),
      };
    },

    "request.show": async (data) => {
      const asked = requests.request.parse(data);
      await session(asked);
      await latest(requestSubject(asked.request), deps.requests);
      const request = requestOf(deps.requests.state, asked.request);
      if (!request || (request.owner !== asked.user && request.from !== asked.user)) {
        throw new NotFoundError(`no request ${asked.request}`);
      }
      return requestView(request, clock.now());
    },

    "request.deny": async (data) => {
      const asked = requests.request.parse(data);
      await session(asked);
      await decideAndAppend(
        requestSubject(asked.request),
        deps.requests,
        () => decideDeny(requestOf(deps.requests.state, asked.request), asked.request, asked.user, clock.now(), make),
      );
      const request = requestOf(deps.requests.state, asked.request)!;
      notify(request.from, {
        kind: "request-denied",
        text: `${request.owner} denied your request for ${request.name}`,
        request: request.request,
      });
      return { request: asked.request, status: "denied" };
    },

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
            type: copy.type,
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
        await decideAndAppend(requestSubject(issue.request), deps.requests, () => {
          checkAnswerable(requestOf(deps.requests.state, issue.request), issue.request, issue.user, clock.now());
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
          contentHash: manifest.contentHash,
          ...(manifest.partBytes === undefined ? {} : { partBytes: manifest.partBytes }),
          parts: manifest.parts,
        },
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
