/** Sharing decisions and their projections: given events / when a command / then events (or a typed refusal). */
import { describe, expect, it } from "vitest";
import {
  checkAnswerable,
  decideCloseGrant,
  decideDeny,
  decideExpireRequest,
  decideRequest,
  decideRevoke,
  decideView,
  type SharingEventMaker,
} from "../../actors/server/sharing/decider.ts";
import { limits, type VeilError, type VeilEvent, veilEvent } from "../../events/mod.ts";
import {
  fold,
  grantOf,
  grantsProjection,
  type ImageManifest,
  requestOf,
  requestsProjection,
} from "../../projections/mod.ts";
import { origin } from "../support/events.ts";

const t0 = 1_800_000_000_000;
const make: SharingEventMaker = (type, data) => veilEvent(type, data as never, origin(t0)) as never;
const id = (digit: string) => digit.repeat(32);

const shown = {
  owner: "olga",
  image: id("a"),
  discoverable: true,
  shownName: "beach at dawn.png",
} as unknown as ImageManifest;

const refusal = (decide: () => unknown) => {
  try {
    decide();
  } catch (error) {
    return error as VeilError;
  }
  throw new Error("expected a refusal");
};

const asked = (at = t0) =>
  veilEvent("AccessRequested", {
    request: id("1"),
    from: "rita",
    owner: "olga",
    image: id("a"),
    name: "photo.png",
    expiresAt: at + limits.requestExpiryMs,
  }, origin(at));

const issued = (views = 2, expiresAt = t0 + 60_000) =>
  veilEvent("GrantIssued", {
    grant: id("2"),
    request: id("1"),
    owner: "olga",
    recipient: "rita",
    image: id("b"),
    name: "photo.png",
    bytes: 10,
    views,
    expiresAt,
    shareA: new Uint8Array(64),
  }, origin(t0));

const viewed = (view: string, viewsLeft: number, at = t0 + 1) =>
  veilEvent("ViewConsumed", { grant: id("2"), view: id(view), viewer: "rita", viewsLeft }, origin(at));

const requestAfter = (...events: VeilEvent[]) => requestOf(fold(requestsProjection, events), id("1"));
const grantAfter = (...events: VeilEvent[]) => grantOf(fold(grantsProjection, events), id("2"));

describe("requests", () => {
  const command = {
    request: id("1"),
    from: "rita",
    owner: "olga",
    reference: "photo.png",
    pendingFromAsker: 0,
    now: t0,
  };

  it("records a request for a shown object under the name it is shown as, expiring after the default wait", () => {
    const [event] = decideRequest({ ...command, image: shown }, make);
    expect(event).toMatchObject({
      type: "AccessRequested",
      data: {
        from: "rita",
        owner: "olga",
        image: id("a"),
        name: "beach at dawn.png",
        expiresAt: t0 + limits.requestExpiryMs,
      },
    });
  });

  it("answers a missing, a hidden and someone else's object alike: not found", () => {
    const hidden = { ...shown, discoverable: false } as ImageManifest;
    const others = { ...shown, owner: "tom" } as ImageManifest;
    const messages = [undefined, hidden, others].map((image) =>
      refusal(() => decideRequest({ ...command, image }, make))
    );
    for (const error of messages) expect(error).toMatchObject({ code: "not-found", message: messages[0]!.message });
  });

  it("bounds the requests one user may have waiting", () => {
    const error = refusal(() =>
      decideRequest({ ...command, image: shown, pendingFromAsker: limits.openRequestsPerUserMax }, make)
    );
    expect(error.code).toBe("conflict");
  });

  it("expires a request nobody answered in time, and only then", () => {
    const pending = requestAfter(asked())!;
    expect(decideExpireRequest(pending, t0 + limits.requestExpiryMs - 1, make)).toEqual([]);
    expect(decideExpireRequest(pending, t0 + limits.requestExpiryMs, make)).toMatchObject([{ type: "RequestExpired" }]);
    const expired = requestAfter(asked(), veilEvent("RequestExpired", { request: id("1") }, origin(t0 + 9)));
    expect(expired).toMatchObject({ status: "expired", decidedAt: t0 + 9 });
    expect(decideExpireRequest(expired!, t0 + 2 * limits.requestExpiryMs, make)).toEqual([]);
  });

  it("lets only the owner answer, once, and only in time", () => {
    const pending = requestAfter(asked());
    expect(decideDeny(pending, id("1"), "olga", t0, make)[0]!.type).toBe("RequestDenied");
    expect(refusal(() => checkAnswerable(pending, id("1"), "rita", t0)).code).toBe("forbidden");
    expect(refusal(() => checkAnswerable(pending, id("1"), "tom", t0)).code).toBe("not-found");
    const late = t0 + limits.requestExpiryMs;
    expect(refusal(() => checkAnswerable(pending, id("1"), "olga", late)).message).toMatch(/expired/);
    const denied = requestAfter(asked(), veilEvent("RequestDenied", { request: id("1") }, origin(t0 + 5)));
    expect(denied).toMatchObject({ status: "denied", decidedAt: t0 + 5 });
    expect(refusal(() => checkAnswerable(denied, id("1"), "olga", t0)).message).toMatch(/denied already/);
  });
});

describe("grants", () => {
  it("spends one view at a time; the last leaves none, and the grant is then closed as spent", () => {
    const grant = grantAfter(issued(2));
    const [first] = decideView(grant, { grant: id("2"), view: id("3"), viewer: "rita", now: t0 }, make);
    expect(first).toMatchObject({ type: "ViewConsumed", data: { viewsLeft: 1 } });
    const spent = grantAfter(issued(2), viewed("3", 1), viewed("4", 0, t0 + 2));
    expect(spent).toMatchObject({ viewsLeft: 0, viewedAt: [t0 + 1, t0 + 2], status: "open" });
    expect(refusal(() => decideView(spent, { grant: id("2"), view: id("5"), viewer: "rita", now: t0 }, make)).message)
      .toMatch(/no views left/);
    expect(decideCloseGrant(spent!, t0, make)).toMatchObject([{
      type: "GrantClosed",
      data: { reason: "views-spent" },
    }]);
  });

  it("spends nothing on a replayed view", () => {
    const grant = grantAfter(issued(3), viewed("3", 2));
    const error = refusal(() => decideView(grant, { grant: id("2"), view: id("3"), viewer: "rita", now: t0 }, make));
    expect(error.message).toMatch(/answered already; nothing spent/);
  });

  it("gives views to the recipient only: the owner is forbidden, anyone else finds nothing", () => {
    const grant = grantAfter(issued());
    const view = (viewer: string) => () => decideView(grant, { grant: id("2"), view: id("3"), viewer, now: t0 }, make);
    expect(refusal(view("olga")).code).toBe("forbidden");
    expect(refusal(view("tom")).code).toBe("not-found");
  });

  it("closes at expiry, once no clock could still be before it, and refuses views from then on", () => {
    const grant = grantAfter(issued(2, t0 + 10));
    const end = t0 + 10 + limits.clockSkewMaxMs;
    expect(decideCloseGrant(grant!, end - 1, make)).toEqual([]);
    expect(decideView(grant, { grant: id("2"), view: id("3"), viewer: "rita", now: end - 1 }, make)).toHaveLength(1);
    expect(decideCloseGrant(grant!, end, make)).toMatchObject([{ data: { reason: "expired" } }]);
    const late = () => decideView(grant, { grant: id("2"), view: id("3"), viewer: "rita", now: end }, make);
    expect(refusal(late).message).toMatch(/expired/);
  });

  it("lets only the owner revoke, once; a closed grant is shredded later and stays closed", () => {
    const grant = grantAfter(issued());
    expect(refusal(() => decideRevoke(grant, id("2"), "rita", make)).code).toBe("forbidden");
    expect(decideRevoke(grant, id("2"), "olga", make)).toMatchObject([{ data: { reason: "revoked" } }]);
    const closed = grantAfter(
      issued(),
      veilEvent("GrantClosed", { grant: id("2"), reason: "revoked" }, origin(t0 + 3)),
      viewed("3", 1),
      veilEvent("GrantShredded", { grant: id("2"), image: id("b") }, origin(t0 + 4)),
    );
    expect(closed).toMatchObject({ status: "closed", closedReason: "revoked", viewsLeft: 2, shredded: true });
    expect(refusal(() => decideRevoke(closed, id("2"), "olga", make)).message).toMatch(/closed already/);
  });
});
