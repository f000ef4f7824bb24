/**
 * A simulated cluster of server actors: real machines and real election effects, on a
 * simulated network and an in-memory log, all driven by one SimulatedClock and one seed.
 * `run` advances time in small steps and checks the invariants after every step.
 */
import { type Actor, createActor, fromCallback, fromPromise, SimulatedClock } from "xstate";
import { electionEffects } from "../../actors/server/effects.ts";
import { serverMachine } from "../../actors/server/machine.ts";
import { compareNodeIds } from "../../actors/server/node-ids.ts";
import { limits, nodeSubject, type VeilEvent, veilEvent } from "../../events/mod.ts";
import { clusterProjection, type ClusterState, fold } from "../../projections/mod.ts";
import { InvariantError, TermInvariants, withSimulation } from "./invariants.ts";
import { MemoryEventLog } from "./memory-log.ts";
import { SimNetwork } from "./network.ts";
import { type Random, seededRandom } from "./random.ts";
import { silentLogger } from "../support/logger.ts";

type ServerActor = Actor<typeof serverMachine>;

/** One ALIVE interval, plus the slowest simulated projection lag and a step. */
const staleLeaderBoundMs = limits.leaderAliveIntervalMs + 100;

export class SimCluster {
  readonly clock = new SimulatedClock();
  readonly random: Random;
  readonly network: SimNetwork;
  readonly log: MemoryEventLog;
  readonly #actors = new Map<string, ServerActor>();
  /** How far behind the log each node's projection runs, as on real servers. */
  readonly #lagMs = new Map<string, number>();
  #ids = 0;
  readonly #terms = new TermInvariants();
  /** Since when each node has led a term older than the log's latest. */
  readonly #staleSince = new Map<string, number>();

  constructor(readonly seed: number) {
    this.random = seededRandom(seed);
    this.network = new SimNetwork(this.clock, this.random);
    this.log = new MemoryEventLog(this.clock, "sim", (ack) => {
      this.clock.setTimeout(ack, this.random.between(0, 40));
    });
  }

  /** The log as `node`'s projection sees it now: everything stored up to its lag ago. */
  viewOf(node: string): ClusterState {
    const cutoff = this.clock.now() - (this.#lagMs.get(node) ?? 0);
    const events: VeilEvent[] = [];
    for (const record of this.log.records) if (record.ok && record.storedAt <= cutoff) events.push(record.event);
    return fold(clusterProjection, events);
  }

  start(nodeId: string): void {
    if (this.#actors.has(nodeId)) throw new Error(`${nodeId} is already running`);
    const effects = electionEffects({
      bus: this.network.bus(nodeId),
      log: this.log,
      clock: this.clock,
      ids: { next: () => `${this.seed}-${++this.#ids}` },
      logger: silentLogger,
      recordedLeader: () => this.viewOf(nodeId).elected ?? undefined,
      isServer: (node) => this.viewOf(nodeId).nodes[node]?.status === "joined",
    });
    this.#lagMs.set(nodeId, this.random.between(0, 60));
    const origin = () => ({ id: `${this.seed}-${++this.#ids}`, at: this.clock.now(), by: nodeId });
    const machine = serverMachine.provide({
      actors: {
        ...effects.actors,
        // Joins and departures are recorded as on real servers; each node's view of them lags.
        announceJoin: fromPromise(async () => {
          await this.log.append(nodeSubject(nodeId), [
            veilEvent("NodeJoined", { node: nodeId, role: "server" }, origin()),
          ]);
        }),
        announceLeave: fromPromise(async () => {
          const left = veilEvent("NodeLeft", { node: nodeId, role: "server", reason: "shutdown" }, origin());
          await this.log.append(nodeSubject(nodeId), [left]);
        }),
        keepProjections: fromCallback(({ sendBack }) => sendBack({ type: "PROJECTIONS_LIVE" })),
        persistProjections: fromPromise(() => Promise.resolve()),
        leaderDuties: fromCallback(() => {}),
      },
      actions: effects.actions,
      guards: effects.guards,
    });
    const actor = createActor(machine, { input: { nodeId }, clock: this.clock });
    this.#actors.set(nodeId, actor);
    actor.start();
  }

  /** The process dies: no resignation, no goodbye. */
  crash(nodeId: string): void {
    this.#actors.get(nodeId)?.stop();
    this.#actors.delete(nodeId);
  }

  /** A graceful stop: a leader resigns first, and the node records its departure. */
  stop(nodeId: string): void {
    this.#actors.get(nodeId)?.send({ type: "STOP" });
    this.#actors.delete(nodeId);
  }

  get alive(): string[] {
    return [...this.#actors.keys()].sort(compareNodeIds);
  }

  /** Nodes that believe they lead, with their terms. */
  leaders(): { node: string; term: number }[] {
    return [...this.#actors.entries()]
      .filter(([, actor]) => actor.getSnapshot().matches({ running: { election: "leader" } }))
      .map(([node, actor]) => ({ node, term: actor.getSnapshot().context.term }));
  }

  /** Who each live node thinks leads. */
  views(): { node: string; leader: string | undefined; state: string }[] {
    return [...this.#actors.entries()].map(([node, actor]) => {
      const snapshot = actor.getSnapshot();
      const value = snapshot.value as { running?: { election?: unknown } };
      const election = value.running?.election;
      return { node, leader: snapshot.context.leader, state: typeof election === "string" ? election : "leader" };
    });
  }

  /** The latest LeaderElected in the log (what a live cluster projection would say). */
  recordedLeader(): { node: string; term: number } | undefined {
    const last = this.log.records.findLast((record) => record.ok && record.event.type === "LeaderElected");
    return last?.ok && last.event.type === "LeaderElected" ? last.event.data : undefined;
  }

  /** Advances simulated time in steps, letting effects settle and checking invariants after each. */
  async run(durationMs: number, stepMs = 10): Promise<void> {
    for (let elapsed = 0; elapsed < durationMs; elapsed += stepMs) {
      this.clock.increment(stepMs);
      // Effects (log appends) settle in microtasks; one macrotask turn drains them all.
      await new Promise((resolve) => setImmediate(resolve));
      this.checkSafety();
    }
  }

  /** Runs until exactly one live node leads and every live node follows it, or fails after `boundMs`. */
  async settle(boundMs: number): Promise<{ node: string; term: number }> {
    for (let elapsed = 0; elapsed <= boundMs; elapsed += 50) {
      const leaders = this.leaders();
      const views = this.views();
      if (
        leaders.length === 1 &&
        views.every((view) =>
          view.leader === leaders[0]!.node && (view.state === "follower" || view.state === "leader")
        )
      ) {
        return leaders[0]!;
      }
      await this.run(50);
    }
    throw new InvariantError(
      `no single agreed leader within ${boundMs} ms of simulated time: ${JSON.stringify(this.views())}; ` +
        `the log records ${JSON.stringify(this.recordedLeader())}`,
    );
  }

  /** At most one leader per term, ever; and the log's terms go 1, 2, 3, ... with no repeats. */
  checkSafety(): void {
    this.#terms.check(this.leaders(), this.log.records, this.clock.now());
    // A leader of a term the log has moved past must notice within an ALIVE interval (plus slack).
    const latest = this.recordedLeader()?.term ?? 0;
    const leading = new Set<string>();
    for (const { node, term } of this.leaders()) {
      leading.add(node);
      if (term >= latest) {
        this.#staleSince.delete(node);
        continue;
      }
      const since = this.#staleSince.get(node) ?? this.clock.now();
      this.#staleSince.set(node, since);
      if (this.clock.now() - since > staleLeaderBoundMs) {
        throw new InvariantError(
          `${node} still leads term ${term} ${staleLeaderBoundMs} ms after term ${latest} was won`,
        );
      }
    }
    for (const node of this.#staleSince.keys()) if (!leading.has(node)) this.#staleSince.delete(node);
  }

  shutdown(): void {
    for (const node of this.alive) this.crash(node);
  }
}

/** Seeds for a test: one from VEIL_SIM_SEED to replay a failure, or a range. */
export function seeds(count: number, first = 1): number[] {
  const replay = process.env.VEIL_SIM_SEED;
  if (replay !== undefined) return [Number(replay)];
  return Array.from({ length: count }, (_, index) => first + index);
}

/** Runs a scenario; on failure, says how to replay exactly this seed. */
export const withSeed = (seed: number, file: string, scenario: (cluster: SimCluster) => Promise<void>) =>
  withSimulation(seed, file, (seed) => new SimCluster(seed), scenario);
