/**
 * The whole system in the simulator: every server is `startServer`, the one production runs
 * (the machine, its projections, its heartbeat, its commands and the leader's duties), every
 * storage node `startStorageNode` over a chunk store in memory, and every user's machine the
 * CLI's own actor-side code (test/sim/peer.ts), on a simulated network, an in-memory log and
 * one SimulatedClock, all from one seed (Ed25519 is the platform's: deterministic, and the
 * portable one's cost would dominate a run). Nothing is stubbed: the leader's rounds are the
 * machine's XState delays on the simulated clock.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SimulatedClock } from "xstate";
import { writeLogDump } from "../../infra/log-dump.ts";
import { ReplayWindow } from "../../actors/crypto/mod.ts";
import { nativeSignatures } from "../../infra/signatures.ts";
import type { Clock, GrantShareStore, RandomSource, Snapshot, SnapshotStore } from "../../actors/ports.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { type HostedServer, startServer } from "../../actors/server/application.ts";
import { ticketKeys } from "../../actors/storage-node/tickets.ts";
import { type HostedStorageNode, startStorageNode } from "../../actors/storage-node/host.ts";
import { CommandClient } from "../../actors/peer/commands.ts";
import { defaultHeartbeatTimeouts } from "../../projections/mod.ts";
import { silentLogger } from "../support/logger.ts";
import { recordingMail } from "../support/identity.ts";
import { TermInvariants, withSimulation } from "./invariants.ts";
import { MemoryEventLog } from "./memory-log.ts";
import { type MemoryChunkStore, memoryChunkStore } from "./memory-store.ts";
import { SimPeer, syncChunkHash } from "./peer.ts";
import { RealWork } from "./real-work.ts";
import { Life } from "./mortal.ts";
import { SimNetwork } from "./network.ts";
import { type Random, seededRandom } from "./random.ts";

/** Random bytes from the seed: the same seed, the same keys, nonces and ids. */
function seededBytes(random: Random): RandomSource {
  return { bytes: (length) => Uint8Array.from({ length }, () => random.between(0, 255)) };
}

const memorySnapshots = (): SnapshotStore => {
  const saved = new Map<string, Snapshot>();
  return {
    load: (name) => Promise.resolve(saved.get(name)),
    save: (name, snapshot) => Promise.resolve(void saved.set(name, snapshot)),
  };
};

const memoryGrantShares = (): GrantShareStore => {
  const shares = new Map<string, Uint8Array>();
  return {
    put: (grant, sealed) => Promise.resolve(void shares.set(grant, sealed)),
    get: (grant) => Promise.resolve(shares.get(grant)),
    delete: (grant) => Promise.resolve(void shares.delete(grant)),
  };
};

export class SimSystem {
  readonly clock = new SimulatedClock();
  readonly random: Random;
  readonly network: SimNetwork;
  readonly log: MemoryEventLog;
  readonly servers = new Map<string, HostedServer>();
  readonly storageNodes = new Map<string, HostedStorageNode>();
  /** Each storage node's disk: it outlives the node's process (a crash), unless it is lost too. */
  readonly disks = new Map<string, MemoryChunkStore>();
  readonly work = new RealWork();
  /** How far each node's clock is off the true (simulated) time, in ms: 0 unless skewed. */
  readonly skews = new Map<string, number>();
  /** The cluster's durations, shortened so that repair and garbage collection happen within a run. */
  readonly durations = {
    repairGraceMs: 4_000,
    gcGraceMs: 30_000,
    gcIntervalMs: 3_000,
    scrubIntervalMs: 1_000,
    sessionTtlMs: 20_000,
  };
  readonly #bytes: RandomSource;
  readonly #clusterKey: Uint8Array;
  readonly #grantShares = memoryGrantShares();
  #ids = 0;

  /**
   * Simulated time starts at a real-looking epoch (2026-01-01), so a clock skewed behind is
   * still a time (an event stamped before 1970 is malformed, and rightly refused).
   */
  readonly startedAt = Date.UTC(2026, 0, 1);

  constructor(readonly seed: number) {
    this.clock.set(this.startedAt);
    this.random = seededRandom(seed);
    this.#bytes = seededBytes(this.random);
    this.#clusterKey = this.#bytes.bytes(32);
    this.network = new SimNetwork(this.clock, this.random);
    this.log = new MemoryEventLog(
      this.clock,
      "sim",
      (ack) => void this.clock.setTimeout(ack, this.random.between(0, 40)),
    );
  }

  /** A node's own clock: the simulated time, off by its skew. Timers run at the true rate. */
  clockOf(node: string): Clock {
    return { now: () => this.clock.now() + (this.skews.get(node) ?? 0) };
  }

  startServer(nodeId: string): HostedServer {
    const life = this.#live(nodeId);
    const server = startServer({
      nodeId,
      bus: life.bus(this.network.bus(nodeId)),
      log: life.port(this.log),
      snapshots: memorySnapshots(),
      grantShares: life.port(this.#grantShares),
      clock: this.clockOf(nodeId),
      // The simulated broker's clock is the true one: a server's offset is its skew.
      clockCheck: { offsetMs: () => Promise.resolve(this.skews.get(nodeId) ?? 0), elapsedMs: () => this.clock.now() },
      timers: this.clock,
      ids: { next: () => `${this.seed}-${++this.#ids}` },
      logger: silentLogger,
      heartbeatTimeouts: defaultHeartbeatTimeouts,
      random: this.#bytes,
      ticketKeys: ticketKeys(this.#clusterKey),
      signatures: nativeSignatures,
      memoryBytes: () => 0,
      chunkHash: syncChunkHash,
      repairGraceMs: this.durations.repairGraceMs,
      gcGraceMs: this.durations.gcGraceMs,
      gcIntervalMs: this.durations.gcIntervalMs,
      identity: {
        secrets: clusterSecrets(this.#clusterKey, this.#bytes),
        replays: new ReplayWindow(),
        // The simulator checks the protocol, not the cost of a password: a cheap stand-in hash.
        slowHash: (input) => Promise.resolve(input.slice(0, 32)),
        // Short, so sessions end (and users log in again) within a run.
        sessionTtlMs: this.durations.sessionTtlMs,
        mail: recordingMail().transport,
      },
    });
    this.servers.set(nodeId, server);
    return server;
  }

  /**
   * A storage node starts (again) over its disk: the one it had, or a new, empty one; `over`:
   * another store for this run only (a mount not up yet), its own disk left as it was.
   */
  startStorageNode(nodeId: string, options: { over?: MemoryChunkStore } = {}): HostedStorageNode {
    let disk = options.over ?? this.disks.get(nodeId);
    if (!disk) this.disks.set(nodeId, disk = memoryChunkStore());
    const life = this.#live(nodeId);
    const bus = life.bus(this.network.bus(nodeId));
    const node = startStorageNode({
      nodeId,
      bus,
      send: new CommandClient(bus, this.clockOf(nodeId), this.#bytes).send,
      store: life.port(disk),
      clock: this.clockOf(nodeId),
      timers: this.clock,
      logger: silentLogger,
      signatures: nativeSignatures,
      chunkHash: syncChunkHash,
      capacityBytes: 1 << 30,
      memoryBytes: () => 0,
      ticketKey: ticketKeys(this.#clusterKey).publicKey,
      scrubIntervalMs: this.durations.scrubIntervalMs,
    });
    this.storageNodes.set(nodeId, node);
    return node;
  }

  /** Every process's life, by node: a crash ends it, and with it everything the process had in flight. */
  readonly #lives = new Map<string, Life>();

  #live(nodeId: string): Life {
    this.#lives.get(nodeId)?.end();
    const life = new Life();
    this.#lives.set(nodeId, life);
    return life;
  }

  crashStorageNode(nodeId: string, options: { loseDisk?: boolean } = {}): void {
    this.#lives.get(nodeId)?.end();
    this.storageNodes.get(nodeId)?.actor.stop();
    this.storageNodes.delete(nodeId);
    if (options.loseDisk) this.disks.delete(nodeId);
  }

  /** A user registers and logs in from a machine of their own. */
  joinPeer(user: string, violations: string[] = []): Promise<SimPeer> {
    const clock = this.clockOf(`peer-${user}`);
    return SimPeer.join({
      network: this.network,
      clock,
      timers: this.clock,
      random: this.#bytes,
      work: this.work,
      violations,
      trueNow: () => this.clock.now(),
    }, user);
  }

  /** The process dies: no resignation, no goodbye, no heartbeat. */
  crash(nodeId: string): void {
    this.#lives.get(nodeId)?.end();
    this.servers.get(nodeId)?.actor.stop();
    this.servers.delete(nodeId);
  }

  /** Simulated time since the start, in ms. */
  get elapsedMs(): number {
    return this.clock.now() - this.startedAt;
  }

  /** Advances simulated time in steps, letting every effect settle and checking safety after each. */
  async run(durationMs: number, stepMs = 10): Promise<void> {
    for (let elapsed = 0; elapsed < durationMs; elapsed += stepMs) {
      this.clock.increment(stepMs);
      // Effects settle in microtasks and promise chains; one macrotask turn drains them, and
      // real work (sealing, deflating) is waited for and handed back in order.
      await new Promise((resolve) => setImmediate(resolve));
      await this.work.settle();
      this.checkSafety();
    }
  }

  /** Runs the simulation until `promise` settles (a peer's upload, a view), and gives its outcome. */
  async complete<T>(what: string, promise: Promise<T>, boundMs = 120_000): Promise<T> {
    let outcome: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    promise.then((value) => (outcome = { ok: true, value }), (error) => (outcome = { ok: false, error }));
    for (let elapsed = 0; !outcome && elapsed <= boundMs; elapsed += 10) await this.run(10);
    if (!outcome) throw new Error(`${what}: not settled within ${boundMs} ms of simulated time`);
    if (!outcome.ok) throw outcome.error;
    return outcome.value;
  }

  /** Runs the simulation until `done` holds, checking every 50 ms of simulated time. */
  async until(what: string, boundMs: number, done: () => boolean): Promise<void> {
    for (let elapsed = 0; elapsed <= boundMs; elapsed += 50) {
      if (done()) return;
      await this.run(50);
    }
    throw new Error(`${what}: not within ${boundMs} ms of simulated time`);
  }

  /** Servers that believe they lead, with their terms. */
  leaders(): { node: string; term: number }[] {
    return [...this.servers.entries()]
      .filter(([, server]) => server.actor.getSnapshot().matches({ running: { election: "leader" } }))
      .map(([node, server]) => ({ node, term: server.actor.getSnapshot().context.term }));
  }

  readonly #terms = new TermInvariants();

  /** Safety checks of a scenario's own, run after every step with the election's. */
  readonly checks: (() => void)[] = [];

  checkSafety(): void {
    this.#terms.check(this.leaders(), this.log.records, this.clock.now());
    for (const check of this.checks) check();
  }

  shutdown(): void {
    for (const node of [...this.servers.keys()]) this.crash(node);
    for (const node of [...this.storageNodes.keys()]) this.crashStorageNode(node);
  }
}

/** Writes the system's log where `veil state --log` and `veil events --log` read it; says how. */
export async function dumpLog(system: SimSystem, folder?: string): Promise<string> {
  // In a new private folder unless told where: a name in /tmp anyone could have planted first.
  const path = join(folder ?? await mkdtemp(join(tmpdir(), "veil-sim-")), `veil-sim-seed-${system.seed}.veillog`);
  await rm(path, { force: true });
  await writeLogDump(path, system.log.stored);
  return `log: ${path} (${system.log.stored.length} entries; veil events --log ${path}, veil state images --log ${path} --at SEQ)`;
}

/** Runs a scenario on a new system; on failure, says how to replay exactly this seed and dumps its log. */
export const withSystem = (seed: number, file: string, scenario: (system: SimSystem) => Promise<void>) =>
  withSimulation(seed, file, (seed) => new SimSystem(seed), scenario, (system) => dumpLog(system));
