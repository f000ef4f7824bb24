/**
 * Sharing end to end on a real nats-server: a server (collecting garbage often), two
 * storage nodes, and three users. Olga shows a photo; Rita asks for it and Olga approves
 * with a number of views; the cluster spends exactly that many, however many clients try at
 * once; after the last one the cluster's share and the copy's chunks are gone, and nothing
 * Rita kept opens it. Tom, a third user, and Olga herself never obtain the cluster's share.
 */
import { Buffer } from "node:buffer";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantObjectKeys, openShare, shareAContext } from "../../actors/peer/grant.ts";
import type { GrantShareStore } from "../../actors/ports.ts";
import { encodePng, generateCover } from "../../actors/stego/mod.ts";
import { grantSubject, type VeilError } from "../../events/mod.ts";
import { openGrantShareStore } from "../../infra/nats/grant-shares.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { sendCommand } from "../../infra/server/commands.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { approve } from "../../infra/sharing/approve.ts";
import { openGrant, type ViewDeps } from "../../infra/sharing/view.ts";
import { storeRequest } from "../../infra/storage/client.ts";
import type { HostedStorageNode } from "../../infra/storage/host.ts";
import { type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { readPart } from "../../infra/vault/parts.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../infra/workers/actors.ts";
import { chunksOf, fold, grantsProjection, type ImageManifest } from "../../projections/mod.ts";
import { accountClient } from "../support/accounts.ts";
import { waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";
import { hostTestServer, hostTestStorageNode } from "../support/servers.ts";

const nats = useNatsServer();
const bus = () => natsBus(nats.nc, silentLogger);
const nodeIds = ["share-store-1", "share-store-2"];
let folder: string;
let server: HostedServer;
let crypto: CryptoActor;
let stego: StegoActor;
let shares: GrantShareStore;
const nodes: HostedStorageNode[] = [];
const passwords: Record<string, string> = {};
const people: Record<string, TransferDeps & ViewDeps> = {};
let photo: Uint8Array;

const refusal = (work: Promise<unknown>) =>
  work.then(() => {
    throw new Error("expected a refusal");
  }, (error: VeilError) => error);

async function signUp(user: string) {
  const client = accountClient(bus(), crypto);
  passwords[user] = `the password of ${user}, long enough`;
  const { keys } = await client.register(user, passwords[user]!);
  people[user] = await logIn(user, keys);
}

/** A fresh session of `user` (another client of the same person), with the keys its login unlocks. */
async function logIn(
  user: string,
  keys = { accountKey: people[user]!.accountKey, privateKey: people[user]!.privateKey },
) {
  const { token } = await accountClient(bus(), crypto).login(user, passwords[user]!);
  return {
    bus: bus(),
    crypto,
    stego,
    random: cryptoRandom,
    session: { user, token },
    accountKey: keys.accountKey,
    privateKey: keys.privateKey,
    logger: silentLogger,
  };
}

const call = (user: string, name: string, data: Record<string, unknown> = {}) =>
  sendCommand(bus(), name, { ...people[user]!.session, ...data });

async function ask(from: string, owner: string, image: string) {
  return await call(from, "request.create", { owner, image }) as { request: string; status: string };
}

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-sharing-"));
  crypto = startCryptoActor({ size: 2 });
  stego = startStegoActor({ size: 2 });
  server = await hostTestServer(nats, {
    nodeId: "share-server",
    identity: { slowHash: crypto.slowHash },
    gc: { graceMs: 1_000, intervalMs: 200 },
  });
  shares = await openGrantShareStore(nats.nc, { replicas: 1 });
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 10_000, what: "a leader" });
  for (const nodeId of nodeIds) {
    nodes.push(hostTestStorageNode(nats, { nodeId, folder: join(folder, "storage"), capacityBytes: 1024 ** 3 }));
  }
  await Promise.all(nodes.map((node) => node.ready));
  for (const node of nodeIds) await waitForHeartbeat(nats.nc, node, (beat) => beat.state === "ready", 5_000);
  for (const user of ["olga", "rita", "tom"]) await signUp(user);
  photo = await encodePng(generateCover(3, 300, 200));
  await writeFile(join(folder, "photo.png"), photo);
  await upload(people.olga!, { path: join(folder, "photo.png"), name: "photo.png", type: "image/png" }, {
    replicas: 2,
  });
  await writeFile(join(folder, "diary.txt"), "private");
  await upload(people.olga!, { path: join(folder, "diary.txt"), name: "diary.txt", type: "text/plain" }, {
    replicas: 2,
  });
  await call("olga", "vault.discoverable", { image: "photo.png", discoverable: true });
}, 90_000);

afterAll(async () => {
  for (const node of nodes) node.actor.send({ type: "STOP" });
  await Promise.all(nodes.map((node) => node.done));
  server?.actor.send({ type: "STOP" });
  await server?.done;
  await Promise.all([crypto?.stop(), stego?.stop()]);
  if (folder) await rm(folder, { recursive: true, force: true });
});

const inFuture = (ms: number) => Date.now() + ms;

describe("requests", () => {
  it("refuses objects that do not exist or are not shown, alike, and requests to oneself", async () => {
    const missing = await refusal(ask("rita", "olga", "no-such.png"));
    const hidden = await refusal(ask("rita", "olga", "diary.txt"));
    const nobody = await refusal(ask("rita", "nobody", "photo.png"));
    for (const error of [missing, hidden, nobody]) expect(error.code).toBe("not-found");
    expect(hidden.message).toBe(`olga shows no object "diary.txt"`);
    expect((await refusal(ask("olga", "olga", "photo.png"))).code).toBe("conflict");
  });

  it("waits in the log for an owner who is offline; the owner sees it and may deny it, once", async () => {
    const { request } = await ask("rita", "olga", "photo.png");
    const listed = await call("olga", "request.list") as { incoming: { request: string; status: string }[] };
    expect(listed.incoming.find((one) => one.request === request)?.status).toBe("pending");
    // Neither the asker nor a stranger can answer it.
    expect((await refusal(call("rita", "request.deny", { request }))).code).toBe("forbidden");
    expect((await refusal(call("tom", "request.deny", { request }))).code).toBe("not-found");
    await call("olga", "request.deny", { request });
    expect((await refusal(call("olga", "request.deny", { request }))).message).toMatch(/was denied already/);
    const mine = await call("rita", "request.list") as { outgoing: { request: string; status: string }[] };
    expect(mine.outgoing.find((one) => one.request === request)?.status).toBe("denied");
  });

  it("refuses a malformed request id and a malformed grant id clearly", async () => {
    expect((await refusal(call("olga", "request.deny", { request: "../../x" }))).code).toBe("validation");
    expect((await refusal(call("rita", "grant.view", { grant: "zz", view: "00".repeat(16) }))).code).toBe(
      "validation",
    );
  });
});

describe("grants", () => {
  it(
    "gives exactly the views granted to 20 concurrent attempts from three clients, then shreds the grant",
    async () => {
      const { request } = await ask("rita", "olga", "photo.png");
      const issued = await approve(people.olga!, request, { views: 5, expiresAt: inFuture(3_600_000) }) as {
        grant: string;
      };
      const grant = issued.grant;
      const inbox = await call("rita", "grant.inbox") as { grant: string; viewsLeft: number; owner: string }[];
      expect(inbox.find((one) => one.grant === grant)).toMatchObject({ viewsLeft: 5, owner: "olga" });
      const copy = (await call("olga", "grant.list") as { grant: string }[]).find((one) => one.grant === grant);
      expect(copy).toBeDefined();

      // Neither a stranger nor the owner can obtain the cluster's share.
      expect((await refusal(call("tom", "grant.view", { grant, view: "11".repeat(16) }))).code).toBe("not-found");
      expect((await refusal(call("olga", "grant.view", { grant, view: "12".repeat(16) }))).code).toBe("forbidden");

      const clients = [people.rita!, await logIn("rita"), await logIn("rita")];
      const attempts = await Promise.allSettled(
        Array.from({ length: 20 }, (_, index) => openGrant(clients[index % 3]!, grant)),
      );
      const opened = attempts.filter((attempt) => attempt.status === "fulfilled");
      const refused = attempts.filter((attempt) => attempt.status === "rejected") as PromiseRejectedResult[];
      expect(refused.map(({ reason }) => (reason as Error).message).filter((message) => !/no views left/.test(message)))
        .toEqual([]);
      expect(opened).toHaveLength(5);
      expect(refused).toHaveLength(15);
      for (const { reason } of refused) expect((reason as Error).message).toMatch(/no views left/);
      for (const attempt of opened) {
        const { plaintext } = (attempt as PromiseFulfilledResult<{ plaintext: Uint8Array }>).value;
        expect(Buffer.from(plaintext).equals(Buffer.from(photo))).toBe(true);
      }
      let consumed = 0;
      for await (const record of nats.log.replay({ subject: grantSubject(grant) })) {
        if (record.ok && record.event.type === "ViewConsumed") consumed++;
      }
      expect(consumed).toBe(5);

      // After the last view: the cluster's share is gone, the copy is removed, its chunks collected.
      await waitForEvent(nats.log, (event) => event.type === "GrantShredded" && event.data.grant === grant, {
        timeoutMs: 15_000,
        what: "the grant shredded",
      });
      expect(await shares.get(grant)).toBeUndefined();
      const grantView = (await call("olga", "grant.list") as { grant: string; viewedAt: number[]; status: string }[])
        .find((one) => one.grant === grant)!;
      expect(grantView.status).toBe("closed");
      expect(grantView.viewedAt).toHaveLength(5);
      const copyRecord = await waitForEvent(
        nats.log,
        (event) => event.type === "ImageStored" && event.data.grant === grant,
        { fromSeq: 1, timeoutMs: 5_000, what: "the copy" },
      );
      const manifest = copyRecord.event.data as unknown as ImageManifest;
      for (const chunk of chunksOf(manifest)) {
        for (const node of chunk.nodes) {
          await waitForHeartbeat(nats.nc, node, () => true, 5_000);
        }
      }
      // Garbage collection runs every 200 ms with a 1 s grace: wait until each chunk is gone.
      const gone = async () => {
        for (const chunk of chunksOf(manifest)) {
          for (const node of chunk.nodes) {
            if (await storeRequest(bus(), node, "has", { hash: chunk.hash })) return false;
          }
        }
        return true;
      };
      const until = Date.now() + 20_000;
      while (!(await gone())) {
        expect(Date.now()).toBeLessThan(until);
        await waitForHeartbeat(nats.nc, nodeIds[0]!, () => true, 5_000);
      }

      // Rita kept share A; without share B, no key opens what she downloaded.
      const issuedEvent = await waitForEvent(
        nats.log,
        (event) => event.type === "GrantIssued" && event.data.grant === grant,
        { fromSeq: 1, timeoutMs: 5_000, what: "the grant" },
      );
      const parties = { grant, owner: "olga", recipient: "rita" };
      const shareA = openShare(
        people.rita!.privateKey,
        (issuedEvent.event.data as { shareA: Uint8Array }).shareA,
        shareAContext(parties),
      );
      const guessed = grantObjectKeys(parties, shareA, cryptoRandom.bytes(32));
      expect(guessed.image).toBe(manifest.image);
      await expect(readPart(people.rita!, guessed, manifest.parts[0]!, 0, [])).rejects.toThrow();
      expect((await refusal(openGrant(people.rita!, grant))).message).toMatch(/closed/);
    },
    120_000,
  );

  it("spends nothing on a replayed view, and refuses a revoked session and a revoked grant", async () => {
    const { request } = await ask("rita", "olga", "photo.png");
    const { grant } = await approve(people.olga!, request, { views: 3, expiresAt: inFuture(3_600_000) }) as {
      grant: string;
    };
    const view = "ab".repeat(16);
    await call("rita", "grant.view", { grant, view });
    expect((await refusal(call("rita", "grant.view", { grant, view }))).message).toMatch(/answered already/);
    const inbox = await call("rita", "grant.inbox") as { grant: string; viewsLeft: number }[];
    expect(inbox.find((one) => one.grant === grant)?.viewsLeft).toBe(2);

    const other = await logIn("rita");
    await sendCommand(bus(), "user.logout", other.session);
    expect((await refusal(openGrant(other, grant))).code).toBe("unauthenticated");

    expect((await refusal(call("rita", "grant.revoke", { grant }))).code).toBe("forbidden");
    await call("olga", "grant.revoke", { grant });
    expect((await refusal(openGrant(people.rita!, grant))).message).toMatch(/revoked/);
    await waitForEvent(nats.log, (event) => event.type === "GrantShredded" && event.data.grant === grant, {
      timeoutMs: 15_000,
      what: "the revoked grant shredded",
    });
    expect(await shares.get(grant)).toBeUndefined();
  }, 60_000);

  it("refuses absurd view counts and expiries, and approving someone else's request", async () => {
    const { request } = await ask("rita", "olga", "photo.png");
    for (const views of [0, -1, 1_000_001, 2.5]) {
      const error = await refusal(approve(people.olga!, request, { views, expiresAt: inFuture(3_600_000) }));
      expect(error.code, String(views)).toBe("validation");
    }
    expect((await refusal(approve(people.olga!, request, { views: 1, expiresAt: Date.now() - 1 }))).code).toBe(
      "validation",
    );
    expect((await refusal(approve(people.tom!, request, { views: 1, expiresAt: inFuture(60_000) }))).code).toBe(
      "not-found",
    );
    const requests = await call("olga", "request.list") as { incoming: { request: string; status: string }[] };
    expect(requests.incoming.find((one) => one.request === request)?.status).toBe("pending");
  }, 60_000);

  it("shows views left at any past moment (time travel over the grants projection)", async () => {
    const { request } = await ask("rita", "olga", "photo.png");
    const { grant } = await approve(people.olga!, request, { views: 2, expiresAt: inFuture(3_600_000) }) as {
      grant: string;
    };
    await openGrant(people.rita!, grant);
    const events = [];
    for await (const record of nats.log.replay()) {
      if (!record.ok) continue;
      events.push(record.event);
      if (record.event.type === "GrantIssued" && record.event.data.grant === grant) break;
    }
    expect(fold(grantsProjection, events).grants[grant]?.viewsLeft).toBe(2);
    const now = fold(grantsProjection, [...await allEvents()]);
    expect(now.grants[grant]?.viewsLeft).toBe(1);
  }, 60_000);
});

async function allEvents() {
  const events = [];
  for await (const record of nats.log.replay()) if (record.ok) events.push(record.event);
  return events;
}
