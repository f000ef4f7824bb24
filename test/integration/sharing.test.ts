/**
 * Sharing end to end on a real nats-server: two servers (the leader collecting garbage often), two
 * storage nodes, and three users. Olga shows a photo; Rita asks for it and Olga approves
 * with a number of views; the cluster spends exactly that many, however many clients try at
 * once; after the last one the cluster's share and the copy's chunks are gone, and nothing
 * Rita kept opens it. Tom, a third user, and Olga herself never obtain the cluster's share.
 */
import { Buffer } from "node:buffer";
import { hostname } from "node:os";
import process from "node:process";
import { sha256 } from "@noble/hashes/sha2.js";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantObjectKeys, openShare, shareAContext } from "../../actors/peer/grant.ts";
import type { GrantShareStore } from "../../actors/ports.ts";
import { encodePng, generateCover } from "../../actors/stego/mod.ts";
import { encodeMessage, grantSubject, limits, type VeilError } from "../../events/mod.ts";
import { openGrantShareStore } from "../../infra/nats/grant-shares.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { sendCommand } from "../../infra/command-client.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { approve } from "../../actors/peer/approve.ts";
import { hostPeer, type Note } from "../../infra/peer/host.ts";
import { discoverOnline, previewServer } from "../../infra/sharing/previews.ts";
import { openGrant, type ViewDeps } from "../../actors/peer/view.ts";
import { storeRequest } from "../../actors/storage-node/client.ts";
import type { HostedStorageNode } from "../../infra/storage/host.ts";
import { listVault, type TransferDeps, upload } from "../../infra/vault/mod.ts";
import { readPart, ticketsOf } from "../../actors/peer/parts.ts";
import { ticketIssuer } from "../../actors/storage-node/tickets.ts";
import { testClusterKey, testTicketKeys } from "../support/identity.ts";
import { type CryptoActor, startCryptoActor, startStegoActor, type StegoActor } from "../../infra/workers/actors.ts";
import { chunksOf, fold, grantsProjection, type ImageManifest } from "../../projections/mod.ts";
import { decodePng } from "../../actors/stego/mod.ts";
import { systemClock } from "../../infra/clock.ts";
import { accountClient, vaultUser } from "../support/accounts.ts";
import { runVeil, startVeil } from "../support/cli.ts";
import { waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";
import { hostTestServer, hostTestStorageNode } from "../support/servers.ts";
import { contains, everyStoredMessage } from "../support/broker.ts";

const nats = useNatsServer();
/** A user's machine's connection; `serverBus` for what only the cluster may do. */
const bus = () => natsBus(nats.client, silentLogger);
const serverBus = () => natsBus(nats.nc, silentLogger);
const nodeIds = ["share-store-1", "share-store-2"];
let folder: string;
let server: HostedServer;
/** A second server: commands spread over both (one queue group), so views race across servers. */
let secondServer: HostedServer;
let crypto: CryptoActor;
let stego: StegoActor;
let shares: GrantShareStore;
const nodes: HostedStorageNode[] = [];
const passwords: Record<string, string> = {};
const people: Record<string, TransferDeps & ViewDeps> = {};
let photo: Uint8Array;
/** Olga's photo (shown as "photo.png") and her diary (never shown): ids, since names are sealed. */
const ids: Record<string, string> = {};

const refusal = (work: Promise<unknown>) =>
  work.then(() => {
    throw new Error("expected a refusal");
  }, (error: VeilError) => error);

async function signUp(user: string) {
  passwords[user] = `the password of ${user}, long enough`;
  people[user] = await vaultUser(bus(), { crypto, stego }, user, passwords[user]!);
}

/** A fresh session of `user` (another client of the same person), with the keys of the first login. */
async function logIn(user: string) {
  const { token } = await accountClient(bus(), crypto).login(user, passwords[user]!);
  return { ...people[user]!, session: { user, token } };
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
  // Every server of a cluster holds the same cluster key (and the storage nodes its ticket key).
  const clusterKey = testClusterKey;
  server = await hostTestServer(nats, {
    nodeId: "share-server",
    identity: { slowHash: crypto.slowHash, clusterKey },
    gc: { graceMs: 1_000, intervalMs: 200 },
  });
  secondServer = await hostTestServer(nats, {
    nodeId: "share-server-0",
    identity: { slowHash: crypto.slowHash, clusterKey },
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
  ids.photo = (await upload(people.olga!, { path: join(folder, "photo.png"), name: "photo.png", type: "image/png" }, {
    replicas: 2,
  })).image;
  await writeFile(join(folder, "diary.txt"), "private");
  ids.diary = (await upload(people.olga!, { path: join(folder, "diary.txt"), name: "diary.txt", type: "text/plain" }, {
    replicas: 2,
  })).image;
  await call("olga", "vault.discoverable", { image: ids.photo, discoverable: true, name: "photo.png" });
}, 90_000);

afterAll(async () => {
  for (const node of nodes) node.actor.send({ type: "STOP" });
  await Promise.all(nodes.map((node) => node.done));
  for (const one of [server, secondServer]) one?.actor.send({ type: "STOP" });
  await Promise.all([server?.done, secondServer?.done]);
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
    // By id too: an object not shown is not found, whoever asks.
    expect((await refusal(ask("rita", "olga", ids.diary!))).code).toBe("not-found");
    expect((await refusal(ask("olga", "olga", "photo.png"))).code).toBe("conflict");
  });

  it("shows an object only under a name its owner sends, and takes ids, never names, from the owner", async () => {
    const unnamed = await refusal(call("olga", "vault.discoverable", { image: ids.diary, discoverable: true }));
    expect(unnamed.code).toBe("validation");
    expect(unnamed.message).toMatch(/say what to show the object as/);
    const byName = await refusal(call("olga", "vault.discoverable", { image: "diary.txt", discoverable: false }));
    expect(byName.code).toBe("validation");
    // The request records the shown name: what the owner chose to make public, and nothing else.
    const { request } = await ask("rita", "olga", ids.photo!);
    const shown = await call("rita", "request.show", { request }) as { name: string; image: string };
    expect(shown).toMatchObject({ name: "photo.png", image: ids.photo });
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
    // A page at a time: following `next` one by one gives every request once, in order.
    type Page = { incoming: { request: string }[]; outgoing: { request: string }[]; next?: string };
    const paged: string[] = [];
    for (let after: string | undefined, pages = 0; pages < 100; pages++) {
      const page = await call("rita", "request.list", { limit: 1, ...(after ? { after } : {}) }) as Page;
      paged.push(...[...page.incoming, ...page.outgoing].map((one) => one.request));
      if (!page.next) break;
      after = page.next;
    }
    const whole = await call("rita", "request.list") as Page;
    expect(paged.length).toBeGreaterThan(1);
    expect(new Set(paged)).toEqual(new Set([...whole.incoming, ...whole.outgoing].map((one) => one.request)));
    expect(paged).toHaveLength(new Set(paged).size);
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
      const inbox =
        (await call("rita", "grant.inbox") as { grants: { grant: string; viewsLeft: number; owner: string }[] })
          .grants;
      expect(inbox.find((one) => one.grant === grant)).toMatchObject({ viewsLeft: 5, owner: "olga" });
      const copy = (await call("olga", "grant.list") as { grants: { grant: string }[] }).grants.find((one) =>
        one.grant === grant
      );
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
      const grantView =
        (await call("olga", "grant.list") as { grants: { grant: string; viewedAt: number[]; status: string }[] })
          .grants
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
            if (await storeRequest(serverBus(), node, "has", { hash: chunk.hash })) return false;
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
      // Even with tickets for them, the chunks are gone.
      const tickets = ticketsOf({
        tickets: ticketIssuer(testTicketKeys.secretKey, systemClock).get(chunksOf(manifest)),
      });
      await expect(readPart(people.rita!, guessed, manifest.parts[0]!, 0, tickets, [])).rejects.toThrow(/on no node/);
      expect((await refusal(openGrant(people.rita!, grant))).message).toMatch(/closed/);
    },
    120_000,
  );

  it("hides a grant's copy at the rate the owner chose for the original", async () => {
    const bytes = cryptoRandom.bytes(300_000);
    await writeFile(join(folder, "dense.bin"), bytes);
    await upload(people.olga!, { path: join(folder, "dense.bin"), name: "dense.bin", type: "x" }, {
      replicas: 2,
      bits: 4,
    });
    const dense = (await listVault(people.olga!)).find((file) => file.name === "dense.bin")!;
    await call("olga", "vault.discoverable", { image: dense.image, discoverable: true, name: "dense.bin" });
    const { request } = await ask("rita", "olga", "dense.bin");
    const { grant } = await approve(people.olga!, request, { views: 1, expiresAt: inFuture(3_600_000) }) as {
      grant: string;
    };
    const copy = await waitForEvent(
      nats.log,
      (event) => event.type === "ImageStored" && event.data.grant === grant,
      { fromSeq: 1, timeoutMs: 5_000, what: "the copy" },
    );
    expect((copy.event.data as unknown as ImageManifest).bitsPerChannel).toBe(4);
    const opened = await openGrant(people.rita!, grant);
    expect(Buffer.from(opened.plaintext).equals(Buffer.from(bytes))).toBe(true);
    // The copy's name and type were sealed under the grant's keys: rita opened them.
    expect(opened).toMatchObject({ name: "dense.bin", type: "x" });
    // Shown no longer: the tests of what olga shows expect her photo alone.
    await call("olga", "vault.remove", { image: dense.image });
  }, 60_000);

  it("spends nothing on a replayed view, and refuses a revoked session and a revoked grant", async () => {
    const { request } = await ask("rita", "olga", "photo.png");
    const { grant } = await approve(people.olga!, request, { views: 3, expiresAt: inFuture(3_600_000) }) as {
      grant: string;
    };
    const view = "ab".repeat(16);
    await call("rita", "grant.view", { grant, view });
    expect((await refusal(call("rita", "grant.view", { grant, view }))).message).toMatch(/answered already/);
    const inbox = (await call("rita", "grant.inbox") as { grants: { grant: string; viewsLeft: number }[] }).grants;
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

/** The users `peer.online` lists for `user` now. */
const onlineFor = async (
  user: string,
) => (await call(user, "peer.online") as { users: { user: string; images: { name: string }[] }[] }).users;

/** Waits, with a bound, until `check` holds, looking again at each of the server's heartbeats. */
async function eventually(check: () => Promise<boolean>, timeoutMs: number, what: string) {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await waitForHeartbeat(nats.nc, "share-server", () => true, 5_000);
  }
}

describe("peers", () => {
  it(
    "shows an online user's shown objects with previews, prints notifications, and drops a peer that goes",
    async () => {
      const notes: Note[] = [];
      const olga = hostPeer({
        user: "olga",
        token: people.olga!.session.token,
        bus: bus(),
        random: cryptoRandom,
        logger: silentLogger,
        onNote: () => {},
        preview: previewServer(people.olga!),
        heartbeatIntervalMs: 200,
      });
      let noted = () => {};
      const rita = hostPeer({
        user: "rita",
        token: people.rita!.session.token,
        bus: bus(),
        random: cryptoRandom,
        logger: silentLogger,
        onNote: (note) => {
          notes.push(note);
          noted();
        },
        preview: previewServer(people.rita!),
        heartbeatIntervalMs: 200,
      });
      try {
        await eventually(
          async () => (await onlineFor("rita")).some((peer) => peer.user === "olga"),
          10_000,
          "olga online",
        );
        const { users: online, more } = await discoverOnline(people.rita!, join(folder, "online"));
        expect(more).toBe(false);
        const shown = online.find((peer) => peer.user === "olga")!;
        // One user is found by name, alone, however many others are online.
        const only = await discoverOnline(people.rita!, join(folder, "online"), { of: "olga" });
        expect(only.users.map((peer) => peer.user)).toEqual(["olga"]);
        expect(shown.images.map((image) => image.name)).toEqual(["photo.png"]);
        const preview = shown.images[0]!;
        expect(preview.previewBytes).toBeGreaterThan(0);
        expect((await stat(preview.previewPath!)).size).toBe(preview.previewBytes);
        const decoded = await decodePng(new Uint8Array(await readFile(preview.previewPath!)));
        expect(Math.max(decoded.width, decoded.height)).toBe(128);
        // A peer answers only for what its user shows.
        const diary = (await listVault(people.olga!)).find((one) => one.name === "diary.txt")!;
        await expect(previewServer(people.olga!)(diary.image)).rejects.toThrow(/no preview/);

        const { request } = await ask("rita", "olga", "photo.png");
        const granted = new Promise<void>((
          resolve,
        ) => (noted = () => notes.some((note) => note.kind === "grant") && resolve()));
        await approve(people.olga!, request, { views: 1, expiresAt: inFuture(3_600_000) });
        await granted;
        expect(notes.find((note) => note.kind === "grant")!.text).toMatch(/olga approved your request for photo\.png/);
      } finally {
        olga.actor.send({ type: "STOP" });
        rita.actor.send({ type: "STOP" });
        await Promise.all([olga.done, rita.done]);
      }
      // Its goodbye takes it off at once.
      await eventually(
        async () => !(await onlineFor("rita")).some((peer) => peer.user === "olga"),
        10_000,
        "olga offline",
      );
    },
    60_000,
  );

  it("drops a peer that stops beating without a goodbye, within the timeout", async () => {
    const beat = () =>
      nats.nc.publish(
        "veil.hb.peer.tom",
        encodeMessage({
          node: "tom",
          role: "peer",
          state: "online",
          term: 0,
          inFlight: 0,
          memoryBytes: 0,
          sentAt: Date.now(),
        }),
      );
    beat();
    await eventually(async () => (await onlineFor("rita")).some((peer) => peer.user === "tom"), 10_000, "tom online");
    const silentFrom = Date.now();
    await eventually(async () => !(await onlineFor("rita")).some((peer) => peer.user === "tom"), 20_000, "tom gone");
    expect(Date.now() - silentFrom).toBeGreaterThanOrEqual(limits.peerHeartbeatTimeoutMs - 1_000);
  }, 40_000);
});

/** What the command-line flow uploaded, for the scan of the log at the end. */
const cliFiles: Uint8Array[] = [];

describe("from the command line", () => {
  it("finds, asks, approves, views and follows a grant; and shows views left at a past point", async () => {
    const homes = { ursa: join(folder, "home-ursa"), vic: join(folder, "home-vic") };
    const env = (user: keyof typeof homes) => ({ ...nats.env, VEIL_HOME: homes[user] });
    for (const user of ["ursa", "vic"] as const) {
      const registered = await runVeil(["register", user, "--password-stdin"], {
        env: env(user),
        stdin: new TextEncoder().encode(`a long secret phrase for ${user.length} letters\n`),
      });
      expect(registered.stdout).toMatch(new RegExp(`logged in as ${user}`));
    }
    const picture = join(folder, "harbour.png");
    const bytes = await encodePng(generateCover(5, 400, 300));
    await writeFile(picture, bytes);
    cliFiles.push(bytes);
    const uploaded = await runVeil(["upload", picture, "--discoverable", "--json"], {
      env: env("ursa"),
      timeoutMs: 60_000,
    });
    expect(JSON.parse(uploaded.stdout)).toMatchObject({ name: "harbour.png", discoverable: true });

    const peer = startVeil(["peer"], { env: env("ursa") });
    try {
      await peer.waitForOutput(/online as ursa/, 20_000);
      let listed: { user: string; images: { name: string; previewPath?: string }[] }[] = [];
      await eventually(
        async () => {
          const ran = await runVeil(["online", "--json", "--dir", join(folder, "vic-online")], { env: env("vic") });
          listed = JSON.parse(ran.stdout);
          return listed.some((one) => one.user === "ursa" && one.images.some((image) => image.previewPath));
        },
        20_000,
        "ursa online with a preview",
      );
      const path = listed.find((one) => one.user === "ursa")!.images[0]!.previewPath!;
      expect((await stat(path)).size).toBeGreaterThan(0);

      const asked = JSON.parse(
        (await runVeil(["request", "ursa", "harbour.png", "--json"], { env: env("vic") })).stdout,
      );
      await peer.waitForOutput(/request: vic asks to see harbour\.png/, 10_000);
      const incoming = JSON.parse((await runVeil(["requests", "--json"], { env: env("ursa") })).stdout);
      expect(incoming.incoming.map((one: { request: string }) => one.request)).toContain(asked.request);
      const badViews = await runVeil(["approve", asked.request, "--views", "0"], { env: env("ursa") });
      expect(badViews.code).toBe(2);
      const approved = await runVeil(["approve", asked.request, "--views", "2", "--expires", "1d", "--json"], {
        env: env("ursa"),
        timeoutMs: 60_000,
      });
      const grant = JSON.parse(approved.stdout) as { grant: string; recipientKey: string };
      // The owner sees the fingerprint of the key the grant is sealed to; the recipient sees the same as theirs.
      const vic = JSON.parse((await runVeil(["whoami", "--json"], { env: env("vic") })).stdout);
      expect(grant.recipientKey).toMatch(/^[0-9a-f]{4}(:[0-9a-f]{4}){7}$/);
      expect(vic.keyFingerprint).toBe(grant.recipientKey);
      const inbox = JSON.parse((await runVeil(["inbox", "--json"], { env: env("vic") })).stdout);
      expect(inbox.find((one: { grant: string }) => one.grant === grant.grant)).toMatchObject({ viewsLeft: 2 });
      const { seq: beforeView } = await waitForEvent(
        nats.log,
        (event) => event.type === "GrantIssued" && event.data.grant === grant.grant,
        { fromSeq: 1, timeoutMs: 5_000, what: "the grant" },
      );

      const output = join(folder, "seen.png");
      const viewed = await runVeil(["view", grant.grant, "-o", output], { env: env("vic"), timeoutMs: 60_000 });
      expect(viewed.stderr).toBe("");
      expect(viewed.stdout).toMatch(/1 view left/);
      expect(Buffer.from(await readFile(output)).equals(Buffer.from(bytes))).toBe(true);
      expect((await stat(output)).mode & 0o777).toBe(0o600);
      const again = await runVeil(["view", grant.grant, "-o", output], { env: env("vic") });
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/exists/);

      const receipts = JSON.parse((await runVeil(["grants", "--json"], { env: env("ursa") })).stdout);
      expect(receipts.find((one: { grant: string }) => one.grant === grant.grant).viewedAt).toHaveLength(1);
      const past = JSON.parse(
        (await runVeil(["state", "grants", "--at", String(beforeView), "--json"], { env: env("vic") })).stdout,
      );
      expect(past.state.grants[grant.grant].viewsLeft).toBe(2);
      const present = JSON.parse((await runVeil(["state", "grants", "--json"], { env: env("vic") })).stdout);
      expect(present.state.grants[grant.grant].viewsLeft).toBe(1);
      expect((await runVeil(["revoke", grant.grant], { env: env("vic") })).code).toBe(5);
    } finally {
      peer.child.kill("SIGINT");
      await peer.exited;
    }
  }, 180_000);
});

describe("the log, after registering, uploading, sharing and viewing", () => {
  it("holds no file name, no plain SHA-256 of a file, no address and no device name", async () => {
    const text = (value: string) => new TextEncoder().encode(value);
    const events = (await everyStoredMessage(nats)).filter((message) => message.stream === "VEIL_EVENTS");
    const manifests = events.filter((message) => message.type === "ImageStored");
    // Not vacuous: the flow stored manifests and sessions, and the CLI logins stated an address.
    expect(manifests.length).toBeGreaterThan(5);
    const sessions = (await allEvents()).filter((event) => event.type === "SessionStarted");
    expect(sessions.some((event) => event.data.user === "ursa" && event.data.addressSealed)).toBe(true);
    expect(sessions.every((event) => event.data.deviceSealed && !event.data.deviceName)).toBe(true);

    // A name never shown is nowhere; a shown one (public by its owner's choice) is in no manifest.
    for (const name of ["diary.txt", "text/plain"]) {
      expect(events.filter((message) => contains(message.bytes, text(name))).map((m) => m.subject), name).toEqual([]);
    }
    for (const name of ["photo.png", "dense.bin", "harbour.png", "image/png"]) {
      expect(manifests.filter((message) => contains(message.bytes, text(name))).map((m) => m.subject), name)
        .toEqual([]);
    }
    // No plain content hash that would let someone holding a file confirm it is in the vault.
    const files = [photo, text("private"), ...cliFiles];
    for (const [index, file] of files.entries()) {
      expect(events.filter((message) => contains(message.bytes, sha256(file))).length, `file ${index}`).toBe(0);
    }
    // Neither where anyone logged in from, nor what they logged in with.
    const deviceNames = ["test device", `${hostname().slice(0, 40)} (${process.platform})`];
    for (const secret of ["127.0.0.1", ...deviceNames]) {
      expect(events.filter((message) => contains(message.bytes, text(secret))).map((m) => m.subject), secret)
        .toEqual([]);
    }
  });
});
