/**
 * The whole server in the simulator: every server is `startServer`, the one production runs
 * (the machine, its projections, its heartbeat, its commands and the leader's duties), on a
 * simulated network, an in-memory log and one SimulatedClock, all from one seed. Nothing is
 * stubbed: the leader's rounds are the machine's XState delays on the simulated clock.
 */
import { SimulatedClock } from "xstate";
import { portableSignatures, ReplayWindow } from "../../actors/crypto/mod.ts";
import type { GrantShareStore, RandomSource, Snapshot, SnapshotStore } from "../../actors/ports.ts";
import { clusterSecrets } from "../../actors/server/accounts/secrets.ts";
import { type HostedServer, startServer } from "../../actors/server/application.ts";
import { ticketKeys } from "../../actors/storage-node/tickets.ts";
import { defaultHeartbeatTimeouts } from "../../projections/mod.ts";
import { silentLogger } from "../support/logger.ts";
import { recordingMail } from "../support/identity.ts";
import { TermInvariants, withSimulation } from "./invariants.ts";
import { MemoryEventLog } from "./memory-log.ts";
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
  readonly #bytes: RandomSource;
  readonly #clusterKey: Uint8Array;
  readonly #grantShares = memoryGrantShares();
  #ids = 0;

  constructor(readonly seed: number) {
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

  startServer(nodeId: string): HostedServer {
    const server = startServer({
      nodeId,
      bus: this.network.bus(nodeId),
      log: this.log,
      snapshots: memorySnapshots(),
      grantShares: this.#grantShares,
      clock: this.clock,
      timers: this.clock,
      ids: { next: () => `${this.seed}-${++this.#ids}` },
      logger: silentLogger,
      heartbeatTimeouts: defaultHeartbeatTimeouts,
      random: this.#bytes,
      ticketKeys: ticketKeys(this.#clusterKey),
      signatures: portableSignatures,
      memoryBytes: () => 0,
      identity: {
        secrets: clusterSecrets(this.#clusterKey, this.#bytes),
        replays: new ReplayWindow(),
        // The simulator checks the protocol, not the cost of a password: a cheap stand-in hash.
        slowHash: (input) => Promise.resolve(input.slice(0, 32)),
        sessionTtlMs: 24 * 3_600_000,
        mail: recordingMail().transport,
      },
    });
    this.servers.set(nodeId, server);
    return server;
  }

  /** The process dies: no resignation, no goodbye, no heartbeat. */
  crash(nodeId: string): void {
    this.servers.get(nodeId)?.actor.stop();
    this.servers.delete(nodeId);
  }

  /** Advances simulated time in steps, letting every effect settle and checking safety after each. */
  async run(durationMs: number, stepMs = 10): Promise<void> {
    for (let elapsed = 0; elapsed < durationMs; elapsed += stepMs) {
      this.clock.increment(stepMs);
      // Effects settle in microtasks and promise chains; one macrotask turn drains them.
      await new Promise((resolve) => setImmediate(resolve));
      this.checkSafety();
    }
  }

  /** Servers that believe they lead, with their terms. */
  leaders(): { node: string; term: number }[] {
    return [...this.servers.entries()]
      .filter(([, server]) => server.actor.getSnapshot().matches({ running: { election: "leader" } }))
      .map(([node, server]) => ({ node, term: server.actor.getSnapshot().context.term }));
  }

  readonly #terms = new TermInvariants();

  checkSafety(): void {
    this.#terms.check(this.leaders(), this.log.records, this.clock.now());
  }

  shutdown(): void {
    for (const node of [...this.servers.keys()]) this.crash(node);
  }
}

/** Runs a scenario on a new system; on failure, says how to replay exactly this seed. */
export const withSystem = (seed: number, file: string, scenario: (system: SimSystem) => Promise<void>) =>
  withSimulation(seed, file, (seed) => new SimSystem(seed), scenario);
