/**
 * One seed's life of the whole system: three servers, four storage nodes and three users'
 * machines that upload, download, remove, show, ask, approve and view, while the seed's
 * faults hit them (a lossy, duplicating, slow network, partitions, crashed and restarted
 * servers and storage nodes, a disk lost, bits rotted). Then the faults stop and the cluster
 * must heal. What must hold, throughout and at the end, is checked by `Ledger` and `settle`.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import {} from "@noble/hashes/sha2.js";
import { chunksOf, fold, imagesProjection, type ImagesState, projections } from "../../projections/mod.ts";
import { hashOf } from "./memory-store.ts";
import type { SimPeer } from "./peer.ts";
import { calmNetwork, randomFaults } from "./network.ts";
import { limits } from "../../events/mod.ts";
import type { SimSystem } from "./system.ts";

export const serverIds = ["s1", "s2", "s3"];
export const storageIds = ["d1", "d2", "d3", "d4"];
export const users = ["alice", "bob", "carol"];
export const replicas = 2;

/** What the users were told, and so what the cluster owes them. */
export class Ledger {
  /** Acknowledged uploads not (yet) removed: image -> owner and content. */
  readonly stored = new Map<string, { owner: string; content: Uint8Array; name: string }>();
  /** Every name a file was uploaded under: none may appear in the log. */
  readonly names = new Set<string>();
  /**
   * Grants issued: grant -> views allowed, views opened, views whose outcome the recipient
   * never learnt (the view may have been spent), recipient.
   */
  readonly grants = new Map<
    string,
    { views: number; opened: number; unknown: number; recipient: string; expiresAt: number }
  >();
  failures = 0;
  /** What succeeded, by kind: the seeds together must have tried every path. */
  readonly done = { uploads: 0, downloads: 0, removes: 0, grants: 0, views: 0 };
  /** Broken promises seen by a user (a file that came back changed): checked every step. */
  readonly violations: string[] = [];
  /** The faults injected, in order: seeds with the same schedule tried the same thing. */
  readonly schedule: string[] = [];
}

/** The images projection folded from the log, incrementally: the checks ask for it every step. */
const folded = new WeakMap<SimSystem, { count: number; state: ImagesState }>();
function imagesOfLog(system: SimSystem): ImagesState {
  const records = system.log.records;
  const known = folded.get(system) ?? { count: 0, state: imagesProjection.initial() };
  let state = known.state;
  for (const record of records.slice(known.count)) if (record.ok) state = imagesProjection.evolve(state, record.event);
  folded.set(system, { count: records.length, state });
  return state;
}

/** Copies of `hash` on the disks of the nodes the manifest names, that still match their hash. */
function intactCopies(system: SimSystem, hash: string, nodes: readonly string[]): number {
  return nodes.filter((node) => {
    const bytes = system.disks.get(node)?.chunks.get(hash);
    return bytes !== undefined && hashOf(bytes) === hash;
  }).length;
}

/**
 * Safety, at any moment: no grant opened more often than it allows, and every chunk of every
 * live manifest has an intact copy where the manifest says (faults never take the last one,
 * so only the system could: garbage collection deleting what is referenced, repair dropping
 * the wrong copy).
 */
export function checkOwed(system: SimSystem, ledger: Ledger): void {
  checkGrantTimes(system, ledger);
  if (ledger.violations.length > 0) throw new Error(ledger.violations.join("; "));
  for (const [grant, { views, opened }] of ledger.grants) {
    if (opened > views) throw new Error(`grant ${grant} of ${views} views opened ${opened} times`);
  }
  for (const image of Object.values(imagesOfLog(system).images)) {
    for (const chunk of chunksOf(image)) {
      if (intactCopies(system, chunk.hash, chunk.nodes) === 0) {
        throw new Error(`chunk ${chunk.hash.slice(0, 12)} of ${image.image} is intact on none of ${chunk.nodes}`);
      }
    }
  }
}

/** Grants' expiries, and how far the log has been read for them. */
const grantTimes = new WeakMap<SimSystem, { read: number; expiresAt: Map<string, number> }>();

/** No grant is recorded closed as expired before its time by the true clock (the broker's, which stores the log). */
function checkGrantTimes(system: SimSystem, ledger: Ledger): void {
  const known = grantTimes.get(system) ?? { read: 0, expiresAt: new Map<string, number>() };
  const records = system.log.records;
  for (const record of records.slice(known.read)) {
    if (!record.ok) continue;
    const { event } = record;
    if (event.type === "GrantIssued") known.expiresAt.set(event.data.grant, event.data.expiresAt);
    if (event.type === "GrantClosed" && event.data.reason === "expired") {
      const expiresAt = known.expiresAt.get(event.data.grant)!;
      if (record.storedAt < expiresAt) {
        ledger.violations.push(`grant ${event.data.grant} closed as expired ${expiresAt - record.storedAt} ms early`);
      }
    }
  }
  grantTimes.set(system, { read: records.length, expiresAt: known.expiresAt });
}

/** Whether a fault may destroy `node`'s copy of these chunks: only if each has another intact copy. */
function bearable(system: SimSystem, node: string, hashes: Iterable<string>): boolean {
  const images = Object.values(imagesOfLog(system).images);
  for (const hash of hashes) {
    const holders = images.flatMap((image) => chunksOf(image)).filter((chunk) => chunk.hash === hash)
      .flatMap((chunk) => chunk.nodes).filter((holder) => holder !== node);
    if (intactCopies(system, hash, [...new Set(holders)]) === 0) return false;
  }
  return true;
}

/** The kinds of fault a run may inject (`npm run sim -- --faults servers,rot`); all of them by default. */
export const faultKinds = [
  "network",
  "partitions",
  "servers",
  "storage",
  "disks",
  "rot",
  "lost-writes",
  "skew",
] as const;

/** How far off a skewed node's clock may be: veil's promises hold within limits.clockSkewMaxMs. */
const skewMaxMs = limits.clockSkewMaxMs;
export type FaultKind = (typeof faultKinds)[number];

/** One random fault of the enabled kinds; what it did is added to the run's schedule. */
function injectFault(system: SimSystem, kinds: readonly FaultKind[], ledger: Ledger, round: number): void {
  const { random } = system;
  const kind = random.pick(kinds.filter((kind) => kind !== "network"));
  const done = (what: string) => ledger.schedule.push(`${round}:${what}`);
  if (kind === "servers") {
    const node = random.pick(serverIds);
    if (system.servers.has(node)) system.crash(node);
    else system.startServer(node);
    done(`server ${node}`);
  } else if (kind === "storage") {
    const node = random.pick(storageIds);
    if (system.storageNodes.has(node)) system.crashStorageNode(node);
    else system.startStorageNode(node);
    done(`storage ${node}`);
  } else if (kind === "disks") {
    // A disk dies with its node, once a run, and only if every chunk on it has a copy elsewhere.
    const node = random.pick(storageIds);
    const disk = system.disks.get(node);
    if (
      !ledger.schedule.some((fault) => fault.includes("disk ")) && disk && bearable(system, node, disk.chunks.keys())
    ) {
      system.crashStorageNode(node, { loseDisk: true });
      done(`disk ${node}`);
    }
  } else if (kind === "rot" || kind === "lost-writes") {
    // Bits rotted in a stored copy, or a write the disk acknowledged and then did not keep
    // (a firmware bug, a bad sector): one copy of one chunk is bad or gone.
    const node = random.pick(storageIds);
    const disk = system.disks.get(node);
    const hashes = disk ? [...disk.chunks.keys()].sort() : [];
    const hash = hashes.length > 0 ? random.pick(hashes) : undefined;
    if (disk && hash && bearable(system, node, [hash])) {
      if (kind === "rot") disk.damage(hash);
      else disk.chunks.delete(hash);
      done(`${kind === "rot" ? "rot" : "lost-write"} ${node}`);
    }
  } else if (kind === "skew") {
    const node = random.pick([...serverIds, ...storageIds, ...users.map((user) => `peer-${user}`)]);
    const skew = random.between(-skewMaxMs, skewMaxMs);
    system.skews.set(node, skew);
    done(`skew ${node} ${skew}`);
  } else if (system.network.partitioned) {
    system.network.heal();
    done("heal");
  } else {
    const everyone = [...serverIds, ...storageIds, ...users.map((user) => `peer-${user}`)];
    const cut = random.between(1, everyone.length - 1);
    system.network.partition([everyone.slice(0, cut), everyone.slice(cut)]);
    done(`partition ${cut}`);
  }
}

/** A small file of the seed's: a few parts' worth would make a run slow, and prove nothing more. */
const contentOf = (system: SimSystem) =>
  Uint8Array.from({ length: system.random.between(1, 3_000) }, () => system.random.between(0, 255));

/** Starts one random user action; what it was told goes into the ledger when it ends. */
function startAction(system: SimSystem, peers: Map<string, SimPeer>, ledger: Ledger, serial: number): Promise<void> {
  const { random } = system;
  const peer = peers.get(random.pick(users))!;
  const own = [...ledger.stored].filter(([, file]) => file.owner === peer.user).map(([image]) => image);
  const roll = random.next();
  const noted = (work: Promise<void>) => work.catch(() => void ledger.failures++);
  if (roll < 0.35 || own.length === 0) {
    const name = `secret-${system.seed}-${serial}.bin`;
    const content = contentOf(system);
    ledger.names.add(name);
    return noted(
      peer.upload(name, content, replicas).then((stored) => {
        ledger.stored.set(stored.image, { owner: peer.user, content, name });
        ledger.done.uploads++;
      }),
    );
  }
  const image = random.pick(own);
  if (roll < 0.5) {
    return noted(
      peer.download(image).then((bytes) => {
        const expected = ledger.stored.get(image)?.content;
        if (expected && bytesToHex(bytes) !== bytesToHex(expected)) {
          ledger.violations.push(`${image} came back changed`);
        }
        ledger.done.downloads++;
      }),
    );
  }
  if (roll < 0.58) {
    // Whatever the reply (a lost one too), the object may be gone: the ledger stops owing it at once.
    ledger.stored.delete(image);
    return noted(peer.remove(image).then(() => void ledger.done.removes++));
  }
  if (roll < 0.78) {
    // Shown, asked for by another user, approved by the owner for a few views.
    const asker = peers.get(random.pick(users.filter((user) => user !== peer.user)))!;
    const views = random.between(1, 3);
    // A day, or a few seconds by the owner's own clock: some grants run out during the run.
    const lifetimeMs = random.chance(0.3) ? random.between(3_000, 15_000) : 86_400_000;
    return noted((async () => {
      await peer.show(image, `shown-${serial}`);
      const request = await asker.ask(peer.user, image);
      const expiresAt = peer.deps.clock.now() + lifetimeMs;
      const grant = await peer.approve(request, views, expiresAt);
      ledger.grants.set(grant, { views, opened: 0, unknown: 0, recipient: asker.user, expiresAt });
      ledger.done.grants++;
    })());
  }
  const theirs = [...ledger.grants.keys()].filter((grant) => ledger.grants.get(grant)!.recipient === peer.user);
  if (theirs.length === 0) return Promise.resolve();
  // One view, or two at once (two devices, a double click): a view is spent once either way.
  const grant = random.pick(theirs);
  return Promise.all(Array.from({ length: random.between(1, 2) }, () => viewOnce(system, peers, ledger, grant))).then(
    () => {},
  );
}

/**
 * One view of a grant: `opened`; `spent` when the cluster says no views are left; `busy` when
 * it was refused for too many views at once (nothing spent). Any other failure (a lost reply,
 * a timeout) leaves `unknown` whether the view was spent.
 */
async function viewOnce(
  system: SimSystem,
  peers: Map<string, SimPeer>,
  ledger: Ledger,
  grant: string,
): Promise<"opened" | "spent" | "busy" | "unknown"> {
  const state = ledger.grants.get(grant)!;
  try {
    await peers.get(state.recipient)!.view(grant);
    state.opened++;
    ledger.done.views++;
    return "opened";
  } catch (error) {
    const message = (error as Error).message;
    // Refused as expired while its time, by the true clock, has not come: whichever node's clock said so.
    if (/expired/.test(message) && system.clock.now() < state.expiresAt) {
      ledger.violations.push(`grant ${grant} refused as expired ${state.expiresAt - system.clock.now()} ms early`);
    }
    if (/no views left|closed/i.test(message)) return "spent";
    if ((error as { code?: string }).code === "busy") return "busy";
    state.unknown++;
    ledger.failures++;
    return "unknown";
  }
}

/** The world before anything goes wrong: every process up, a leader, and the users registered and logged in. */
export async function startWorld(system: SimSystem, violations: string[] = []): Promise<Map<string, SimPeer>> {
  for (const node of serverIds) system.startServer(node);
  for (const node of storageIds) system.startStorageNode(node);
  await system.until("a leader", 10_000, () => system.leaders().length === 1);
  const peers = new Map<string, SimPeer>();
  for (const user of users) {
    peers.set(user, await system.complete(`${user} joins`, system.joinPeer(user, violations)));
  }
  return peers;
}

export async function runScenario(
  system: SimSystem,
  options: { rounds: number; faults?: readonly FaultKind[] },
): Promise<Ledger> {
  const kinds = options.faults ?? faultKinds;
  const ledger = new Ledger();
  const peers = await startWorld(system, ledger.violations);
  // Safety after every step, not only between rounds: a moment with no intact copy is a loss.
  system.checks.push(() => checkOwed(system, ledger));
  if (kinds.includes("network")) system.network.faults = randomFaults(system.random);
  const running = new Set<Promise<void>>();
  for (let round = 0; round < options.rounds; round++) {
    if (kinds.some((kind) => kind !== "network") && system.random.chance(0.3)) {
      injectFault(system, kinds, ledger, round);
    }
    const action = startAction(system, peers, ledger, round);
    running.add(action);
    void action.finally(() => running.delete(action));
    await system.run(system.random.between(20, 600));
    checkOwed(system, ledger);
  }

  // The faults stop: the network heals, every process comes back, and what was in flight ends.
  system.network.heal();
  system.network.faults = { ...calmNetwork };
  for (const node of serverIds) if (!system.servers.has(node)) system.startServer(node);
  for (const node of storageIds) if (!system.storageNodes.has(node)) system.startStorageNode(node);
  await system.complete("what was in flight", Promise.all(running));
  await settle(system, peers, ledger);
  return ledger;
}

/**
 * Liveness, once calm: every chunk back at its replicas, every acknowledged file given back
 * as it was, every grant opening exactly as often as it allows, every server's state what the
 * log folds to, and no file name in the log.
 */
/** Chunks on a running node's disk that no live manifest references. */
function garbage(system: SimSystem): string[] {
  const referenced = new Set(
    Object.values(imagesOfLog(system).images).flatMap((image) => chunksOf(image)).map((chunk) => chunk.hash),
  );
  return [...system.storageNodes.keys()].flatMap((node) =>
    [...system.disks.get(node)!.chunks.keys()].filter((hash) => !referenced.has(hash)).map((hash) =>
      `${node}: ${hash.slice(0, 12)}`
    )
  );
}

export async function settle(system: SimSystem, peers: Map<string, SimPeer>, ledger: Ledger): Promise<void> {
  const calmSince = system.clock.now();
  const short = () =>
    Object.values(imagesOfLog(system).images).flatMap((image) =>
      chunksOf(image).filter((chunk) => intactCopies(system, chunk.hash, chunk.nodes) < image.replicas)
        .map((chunk) =>
          `${image.image}: chunk ${chunk.hash.slice(0, 12)} intact on ${
            chunk.nodes.filter((node) => intactCopies(system, chunk.hash, [node]) === 1)
          } of ${chunk.nodes}`
        )
    );
  await system.until("every chunk back at its replicas", 120_000, () => {
    checkOwed(system, ledger);
    return short().length === 0;
  }).catch((error: Error) => {
    throw new Error(`${error.message}: ${short().join("; ")}`);
  });
  for (const [image, file] of ledger.stored) {
    const bytes = await system.complete(`download ${image}`, peers.get(file.owner)!.download(image));
    if (bytesToHex(bytes) !== bytesToHex(file.content)) throw new Error(`${image} came back changed`);
  }
  for (const [grant, state] of ledger.grants) {
    // Viewed until refused: it opens as often as it allows, less only the views whose outcome
    // was lost under faults (each may have been spent), and never more.
    // First more views at once than are left, then one at a time until refused.
    const unknownBefore = state.unknown;
    const atOnce = Array.from({ length: state.views - state.opened + 1 }, () => viewOnce(system, peers, ledger, grant));
    const outcomes = await system.complete(`views of ${grant} at once`, Promise.all(atOnce));
    checkOwed(system, ledger);
    let outcome = outcomes.includes("spent") ? "spent" : "opened";
    while (outcome !== "spent") {
      outcome = await system.complete(`view ${grant}`, viewOnce(system, peers, ledger, grant));
      if (outcome === "unknown") break;
      checkOwed(system, ledger);
    }
    if (state.unknown !== unknownBefore) throw new Error(`a view of grant ${grant} failed once calm`);
    // A grant whose time ran out opened at most its views (checked throughout); exactly, only a grant still running.
    if (system.clock.now() >= state.expiresAt) continue;
    if (state.opened > state.views || state.opened < state.views - state.unknown) {
      throw new Error(
        `grant ${grant} of ${state.views} views opened ${state.opened} times (${state.unknown} outcomes lost)`,
      );
    }
  }
  // Garbage collection's grace passes, and its rounds with it: what is referenced stays
  // (checked every step), and what is not (removed files, failed uploads) is gone.
  const { gcGraceMs, gcIntervalMs } = system.durations;
  await system.until("garbage collected", gcGraceMs + 10 * gcIntervalMs, () => {
    checkOwed(system, ledger);
    return garbage(system).length === 0 && system.clock.now() > calmSince + gcGraceMs + 2 * gcIntervalMs;
  }).catch((error: Error) => {
    throw new Error(`${error.message}: ${garbage(system).slice(0, 5).join("; ")}`);
  });
  const events = system.log.records.flatMap((record) => (record.ok ? [record.event] : []));
  for (const [node, server] of system.servers) {
    for (const projection of projections) {
      const live = server.projectors.get(projection.name)!.state;
      const folded = fold(projection, events);
      if (JSON.stringify(live) !== JSON.stringify(folded)) {
        throw new Error(
          `${node}'s ${projection.name} differs from the log folded from sequence 1: ${
            JSON.stringify(live).slice(0, 600)
          } against ${JSON.stringify(folded).slice(0, 600)}`,
        );
      }
    }
  }
  const logText = system.log.stored.map((entry) => new TextDecoder("latin1").decode(entry.bytes)).join("\n");
  for (const name of ledger.names) if (logText.includes(name)) throw new Error(`file name ${name} is in the log`);
}
