/**
 * A server, whole, on the ports: the server machine with its effects (the election over the
 * bus, projections over the log, the leader's duties), its heartbeat, the cluster's health
 * view from everyone's heartbeats, and every command it serves. It touches no world: the
 * host (infra/server/host.ts) gives it NATS, the system's clock, timers and signatures; the
 * simulator gives it simulated ones.
 */
import { type Actor, createActor, fromCallback, fromPromise, type SnapshotFrom, toPromise, waitFor } from "xstate";
import type {
  Bus,
  ChunkHasher,
  Clock,
  EventLog,
  GrantShareStore,
  IdSource,
  Logger,
  MailTransport,
  RandomSource,
  Signatures,
  SnapshotStore,
  Timers,
} from "../ports.ts";
import type { ClusterSecrets } from "./accounts/secrets.ts";
import type { ReplayWindow } from "../crypto/mod.ts";
import { ticketIssuer, type TicketKeys } from "../storage-node/tickets.ts";
import { electionEffects } from "./effects.ts";
import { place, type PlacementPolicy } from "./load-balancer.ts";
import { type ServerEvent, serverMachine, type ServerOutput } from "./mod.ts";
import { StorageQuota } from "./quota.ts";
import {
  heartbeat,
  heartbeatSubject,
  leaderCommandSubject,
  limits,
  nodeSubject,
  type NodeView,
  object,
  placeRequest,
  readReply,
  UnavailableError,
  veilEvent,
} from "../../events/mod.ts";
import {
  clusterProjection,
  type ClusterState,
  emptyHealth,
  forgetLongGone,
  grantsProjection,
  type GrantsState,
  type HealthState,
  type HeartbeatTimeouts,
  imagesProjection,
  type ImagesState,
  isAlive,
  observeHeartbeat,
  outboxProjection,
  type OutboxState,
  projections,
  requestsProjection,
  type RequestsState,
  usersProjection,
  type UsersState,
} from "../../projections/mod.ts";
import { Projector } from "./projector.ts";
import { accountCommands, type SlowHash } from "./accounts/commands.ts";
import { vaultCommands } from "./vault/commands.ts";
import { type CommandContext, serveCommands, serveLeaderCommands } from "./commands.ts";
import { authenticated, userSessions } from "./accounts/sessions.ts";
import { startMailer } from "../mailer/duty.ts";
import { collectRound } from "./vault/collector.ts";
import { repairRound } from "./vault/repair.ts";
import { grantCommands } from "./sharing/grants.ts";
import { sharingCommands } from "./sharing/commands.ts";
import { sharingDuties } from "./sharing/duties.ts";
import { roundsMachine } from "../rounds.ts";
import { checkedClock, type ClockCheck } from "./clock-check.ts";
import { reconcileMembership } from "./membership.ts";
import { presenceCommands } from "./presence.ts";

export interface ServerDeps {
  readonly nodeId: string;
  readonly bus: Bus;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  readonly clock: Clock;
  /** What every delay and round runs on: the machine's, the heartbeat's, the leader's duties'. */
  readonly timers: Timers;
  /** Checks and makes the storage tickets' signatures. */
  readonly signatures: Signatures;
  /** How far this host's clock is from the broker's (by the stamps on its heartbeats); unchecked without. */
  readonly clockCheck?: ClockCheck;
  /** How much memory this process holds, for its heartbeat. */
  readonly memoryBytes: () => number;
  readonly ids: IdSource;
  readonly logger: Logger;
  readonly heartbeatTimeouts: HeartbeatTimeouts;
  readonly random: RandomSource;
  /** How long a silent storage node keeps its replicas before repair copies them elsewhere (VEIL_REPAIR_GRACE_MS). */
  readonly repairGraceMs?: number;
  /** How repair checks a copied chunk (Web Crypto's SHA-256 unless given; the simulator's is synchronous). */
  readonly chunkHash?: ChunkHasher;
  /** Garbage collection: how long a put chunk is kept unreferenced (VEIL_GC_GRACE_MS), and how often the leader looks (VEIL_GC_INTERVAL_MS). */
  readonly gcGraceMs?: number;
  readonly gcIntervalMs?: number;
  /** What one user's objects and uploads may take on the storage nodes, every replica counted (VEIL_QUOTA). */
  readonly userQuotaBytes?: number;
  /** Where the cluster keeps its shares of grant keys (a KV bucket). */
  readonly grantShares: GrantShareStore;
  /** The storage ticket key pair, from the cluster key: puts and gets on storage nodes need a ticket signed with it. */
  readonly ticketKeys: TicketKeys;
  /** What account commands need: the cluster key's secrets, the server's slow hash, the session lifetime. */
  readonly identity: {
    readonly secrets: ClusterSecrets;
    readonly slowHash: SlowHash;
    readonly sessionTtlMs: number;
    /** Where the leader's mailer sends notifications. */
    readonly mail: MailTransport;
    /** The sealed commands' nonces seen, shared by the servers of one process. */
    readonly replays: ReplayWindow;
  };
}

export interface HostedServer {
  readonly actor: Actor<typeof serverMachine>;
  readonly projectors: ReadonlyMap<string, Projector<unknown>>;
  /** Resolves with the machine's output once it reaches `stopped` or `failed`. */
  readonly done: Promise<ServerOutput>;
  /** Resolves true once the server is live (caught up), false if it finished first. */
  readonly live: Promise<boolean>;
}

/** Who asks for a placement from a user's machine. */
const placeSession = object(authenticated);

/** The election state a snapshot is in, as heartbeats and `veil nodes` show it. */
function describeState(snapshot: SnapshotFrom<typeof serverMachine>): string {
  if (snapshot.status !== "active") return "stopped";
  const value = snapshot.value as string | { running?: { election?: string | object } };
  if (typeof value === "string") return value;
  if ("stopping" in value) return "stopping";
  const election = value.running?.election;
  return typeof election === "string" ? election : "leader";
}

export function startServer(deps: ServerDeps): HostedServer {
  const { nodeId, bus, log, snapshots, clock, ids, logger, heartbeatTimeouts, random, identity } = deps;
  const { timers, signatures } = deps;
  // Decisions that take the time use the judged clock, which refuses while the host's is off.
  const time = checkedClock({ clock, check: deps.clockCheck, logger, nodeId });
  const judged = time.judged;
  const tickets = ticketIssuer(deps.ticketKeys.secretKey, judged, signatures);
  const projectors = new Map(
    projections.map((
      projection,
    ) => [projection.name, new Projector({ log, snapshots, projection, logger, timers, clock })]),
  );
  const cluster = projectors.get(clusterProjection.name) as Projector<ClusterState>;
  const users = projectors.get(usersProjection.name) as Projector<UsersState>;
  const outbox = projectors.get(outboxProjection.name) as Projector<OutboxState>;
  const images = projectors.get(imagesProjection.name) as Projector<ImagesState>;
  const requests = projectors.get(requestsProjection.name) as Projector<RequestsState>;
  const grants = projectors.get(grantsProjection.name) as Projector<GrantsState>;
  const origin = () => ({ id: ids.next(), at: clock.now(), by: nodeId });

  let inFlight = 0;
  const track = <T>(work: Promise<T>): Promise<T> => {
    inFlight++;
    return work.finally(() => inFlight--);
  };

  let health: HealthState = emptyHealth();
  /** Who is online: users' peers, from their presence heartbeats. */
  let presence: HealthState = emptyHealth();
  const heartbeats = bus.subscribe("veil.hb.>", (message) => {
    let beat;
    try {
      beat = heartbeat.parse(message.data);
    } catch (error) {
      return logger.warn("ignored malformed heartbeat", { subject: message.subject, reason: (error as Error).message });
    }
    // The subject names who sent it; a body that claims to be someone else is not believed.
    if (message.subject !== heartbeatSubject(beat.role, beat.node)) {
      return logger.warn("ignored a heartbeat whose body does not match its subject", {
        subject: message.subject,
        node: beat.node,
        role: beat.role,
      });
    }
    // Peers are users, not cluster members: they live in their own table, so a user named
    // like a node cannot stand in for it, and membership never records them.
    if (beat.role === "peer") {
      presence = observeHeartbeat(
        forgetLongGone(presence, clock.now(), heartbeatTimeouts),
        beat,
        clock.now(),
        limits.peersOnlineMax,
      );
    } else health = observeHeartbeat(health, beat, clock.now());
  });

  let placementCursor = 0;
  const quota = new StorageQuota(deps.userQuotaBytes ?? limits.userQuotaBytes, limits.ticketLifetimeMs);
  const nodesView = () => {
    const now = clock.now();
    const state = cluster.state;
    const ids = new Set([...Object.keys(health.nodes), ...Object.keys(state.nodes)]);
    const nodes: NodeView[] = [...ids].sort().map((id) => {
      const seen = health.nodes[id];
      const member = state.nodes[id];
      return {
        id,
        role: seen?.role ?? member?.role ?? "server",
        state: seen && isAlive(seen, now, heartbeatTimeouts) ? seen.state : "gone",
        alive: seen !== undefined && isAlive(seen, now, heartbeatTimeouts),
        leader: state.leader?.node === id,
        term: seen?.term ?? 0,
        lastHeartbeatAgeMs: seen ? now - seen.lastSeenAt : null,
        membership: member?.status ?? "unrecorded",
        inFlight: seen?.inFlight ?? 0,
        memoryBytes: seen?.memoryBytes ?? 0,
        lagMs: seen?.lagMs,
        clockOffsetMs: seen?.clockOffsetMs,
        bytesUsed: seen?.bytesUsed,
        capacityBytes: seen?.capacityBytes,
        chunks: seen?.chunks,
      };
    });
    // Peers online now, for `veil topology`: users, never members, so only while they beat.
    const peers: NodeView[] = Object.entries(presence.nodes)
      .filter(([, seen]) => seen.state === "online" && isAlive(seen, now, heartbeatTimeouts))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([id, seen]) => ({
        id,
        role: "peer",
        state: seen.state,
        alive: true,
        leader: false,
        term: 0,
        lastHeartbeatAgeMs: now - seen.lastSeenAt,
        membership: "unrecorded",
        inFlight: 0,
        memoryBytes: seen.memoryBytes,
      }));
    return { answeredBy: nodeId, leader: state.leader, term: state.term, nodes: [...nodes, ...peers] };
  };
  /** Leader-only work runs only while this node leads the latest term the log records. */
  const requireLatestTerm = () => {
    const snapshot = actor.getSnapshot();
    const elected = cluster.state.elected;
    if (
      !snapshot.matches({ running: { election: "leader" } }) || elected?.node !== nodeId ||
      elected.term !== snapshot.context.term
    ) {
      throw new UnavailableError("this server no longer leads the latest term; retry");
    }
  };
  const leaderCommands = {
    "cluster.place": (data: unknown) => {
      requireLatestTerm();
      const request = placeRequest.parse(data);
      const now = clock.now();
      const excluded = new Set(request.exclude ?? []);
      const candidates = Object.entries(health.nodes)
        .filter(([node, seen]) => seen.role === "storage" && !excluded.has(node))
        .map(([node, seen]) => ({
          node,
          healthy: isAlive(seen, now, heartbeatTimeouts),
          bytesUsed: seen.bytesUsed ?? 0,
          capacityBytes: seen.capacityBytes ?? 0,
          inFlight: seen.inFlight,
        }));
      const bytes = request.chunks.reduce((sum, chunk) => sum + chunk.bytes, 0);
      const placed = place(candidates, {
        bytes,
        replicas: request.replicas,
        policy: (request.policy ?? "least-loaded") as PlacementPolicy,
        cursor: placementCursor,
      });
      placementCursor = placed.cursor;
      if (request.user) quota.reserve(request.user, bytes * placed.nodes.length, images.state, now);
      return {
        nodes: placed.nodes,
        tickets: placed.nodes.map((node) => ({ node, ticket: tickets.put(node, request.chunks) })),
      };
    },
  };
  const { session } = userSessions({ log, users, clock: judged });
  /**
   * A placement signs put tickets, which let bytes onto the storage nodes: a user's machine
   * gets them only with an open session. Servers (repair, tests inside the trusted account)
   * ask without one.
   */
  const placeFor = async (data: unknown, context: CommandContext) => {
    // The leader counts a user's placements against the user's quota; servers place for themselves.
    const { user: _claimed, ...request } = placeRequest.parse(data);
    const forwarded = context.caller
      ? { ...request, user: (await session(placeSession.parse(data))).state.user }
      : request;
    const subject = leaderCommandSubject("cluster.place");
    return readReply(await bus.request(subject, forwarded, { timeoutMs: limits.commandTimeoutMs }), subject);
  };
  const sharing = {
    nodeId,
    bus,
    log,
    clock: judged,
    timers,
    ids,
    logger,
    random,
    images,
    requests,
    grants,
    shares: deps.grantShares,
    presence: () => presence,
  };
  const duties = sharingDuties(sharing);
  const commands = serveCommands({
    bus,
    logger,
    commands: {
      "cluster.nodes": () => nodesView(),
      "cluster.place": placeFor,
      // Any server answers, in the clear (they are public): clients learn what to seal commands to,
      // storage nodes without the cluster key how to check tickets.
      "cluster.keys": () => ({
        sealingKey: identity.secrets.sealingKeys.publicKey,
        fingerprint: identity.secrets.fingerprint,
        ticketKey: deps.ticketKeys.publicKey,
        // A server whose clock is off gives no time to set clients' clocks by.
        now: judged.now(),
      }),
      ...accountCommands({ nodeId, log, users, clock: judged, ids, random, logger, ...identity }),
      ...vaultCommands({
        nodeId,
        bus,
        log,
        users,
        images,
        grants,
        clock: judged,
        ids,
        tickets,
        ticketKey: deps.ticketKeys.publicKey,
        signatures,
      }),
      ...sharingCommands({ ...sharing, users, duties, presence: () => presence, heartbeatTimeouts }),
      ...grantCommands({ ...sharing, users, secrets: identity.secrets, duties, tickets }),
      ...presenceCommands({ ...sharing, users, heartbeatTimeouts }),
    },
    // cluster.place is checked here first (see placeFor): the others go to the leader as they are.
    leaderCommands: new Set(Object.keys(leaderCommands).filter((name) => name !== "cluster.place")),
    trustedCommands: new Set(["cluster.nodes"]),
    // A server whose clock is off judges no request's age: it refuses unopened, and says why.
    sealing: { keys: identity.secrets.sealingKeys, replays: identity.replays, clock: judged, random },
    track,
  });

  const election = electionEffects({
    bus,
    log,
    clock,
    ids,
    logger,
    recordedLeader: () => cluster.state.elected ?? undefined,
    isServer: (node) => cluster.state.nodes[node]?.status === "joined" && cluster.state.nodes[node]?.role === "server",
  });
  const machine = serverMachine.provide({
    actors: {
      ...election.actors,
      announceJoin: fromPromise(async ({ input }) => {
        await log.append(nodeSubject(input.nodeId), [
          veilEvent("NodeJoined", { node: input.nodeId, role: "server" }, origin()),
        ]);
        logger.info("joined the cluster");
      }),
      keepProjections: fromCallback<ServerEvent, { nodeId: string }>(({ sendBack }) => {
        const all = [...projectors.values()];
        // Results that arrive after the machine left `running` belong to nobody.
        let active = true;
        const report = (event: ServerEvent) => active && sendBack(event);
        const fail = (error: Error) => report({ type: "PROJECTIONS_FAILED", reason: error.message });
        Promise.all(all.map((projector) => projector.start()))
          .then(() => {
            logger.info("projections live", { projections: [...projectors.keys()].join(",") });
            report({ type: "PROJECTIONS_LIVE" });
          })
          .catch(fail);
        void Promise.race(all.map((projector) => projector.failed)).then(fail);
        return () => {
          active = false;
        };
      }),
      leaderDuties: fromCallback<ServerEvent, { nodeId: string; term: number }>(({ input }) => {
        const leaderSince = clock.now();
        const serving = serveLeaderCommands({ bus, commands: leaderCommands, track });
        let active = true;
        const stillLeading = () => {
          if (!active) return false;
          const elected = cluster.state.elected;
          return elected?.node === nodeId && elected.term === input.term;
        };
        const repairCursor = { offset: 0 };
        const rounds = createActor(
          roundsMachine([
            {
              name: "membership round",
              intervalMs: limits.serverHeartbeatIntervalMs,
              round: () =>
                reconcileMembership({
                  ...input,
                  log,
                  clock,
                  ids,
                  logger,
                  leaderSince,
                  stillLeading,
                  cluster: () => cluster.state,
                  health: () => health,
                  heartbeatTimeouts,
                }),
            },
            {
              name: "repair round",
              intervalMs: limits.repairIntervalMs,
              round: () =>
                repairRound({
                  nodeId,
                  bus,
                  log,
                  clock: judged,
                  ids,
                  logger,
                  images,
                  health: () => health,
                  heartbeatTimeouts,
                  graceMs: deps.repairGraceMs ?? limits.repairGraceMs,
                  ...(deps.chunkHash ? { chunkHash: deps.chunkHash } : {}),
                  tickets,
                  leaderSince,
                  stillLeading,
                }, repairCursor),
            },
            {
              name: "garbage collection round",
              intervalMs: deps.gcIntervalMs ?? limits.gcIntervalMs,
              round: async () => {
                const report = await collectRound({
                  bus,
                  log,
                  ids,
                  nodeId,
                  logger,
                  images,
                  health: () => health,
                  heartbeatTimeouts,
                  now: () => judged.now(),
                  graceMs: deps.gcGraceMs ?? limits.gcGraceMs,
                  stillLeading,
                });
                const { chunks, bytes, lost } = report;
                if (chunks > 0) logger.info("garbage collected unreferenced chunks", { chunks, bytes });
                if (lost > 0) logger.warn("copies recorded lost, for repair", { copies: lost });
              },
            },
            {
              name: "sharing sweep",
              intervalMs: limits.sharingSweepIntervalMs,
              round: () => duties.sweep(stillLeading),
            },
          ], (duty, error) => logger.warn(`${duty} failed`, { reason: error.message })),
          { clock: timers },
        ).start();
        const mailer = startMailer({
          nodeId,
          log,
          users,
          outbox,
          secrets: identity.secrets,
          mail: identity.mail,
          clock,
          timers,
          ids,
          logger,
        });
        return () => {
          active = false;
          rounds.stop();
          mailer.stop();
          serving.unsubscribe();
        };
      }),
      persistProjections: fromPromise(async () => {
        await Promise.all([...projectors.values()].map((projector) => projector.stop()));
      }),
      announceLeave: fromPromise(async ({ input }) => {
        await log.append(nodeSubject(input.nodeId), [
          veilEvent("NodeLeft", { node: input.nodeId, role: "server", reason: "shutdown" }, origin()),
        ]);
        logger.info("left the cluster");
      }),
    },
    actions: election.actions,
    guards: election.guards,
  });

  const actor = createActor(machine, { input: { nodeId }, clock: timers });
  const beat = () => {
    health = forgetLongGone(health, clock.now(), heartbeatTimeouts);
    const snapshot = actor.getSnapshot();
    bus.publish(heartbeatSubject("server", nodeId), {
      node: nodeId,
      role: "server",
      state: describeState(snapshot),
      term: snapshot.context.term,
      leader: snapshot.context.leader,
      inFlight,
      memoryBytes: deps.memoryBytes(),
      sentAt: clock.now(),
      lagMs: Math.max(0, ...[...projectors.values()].map((projector) => projector.behindMs(clock.now()))),
      ...(time.offsetMs() !== undefined ? { clockOffsetMs: time.offsetMs() } : {}),
    });
  };
  // A beat that fails (a connection closing) is reported, and the node goes on beating.
  const beating = createActor(
    roundsMachine(
      [
        { name: "heartbeat", intervalMs: limits.serverHeartbeatIntervalMs, round: () => Promise.resolve(beat()) },
        { name: "clock check", intervalMs: limits.clockCheckIntervalMs, round: () => time.measure() },
      ],
      (round, error) => logger.warn(`${round} failed`, { reason: error.message }),
    ),
    { clock: timers },
  );
  // Beat at once when the state changes, so a new leader shows as one without waiting a period.
  let lastState = "";
  actor.subscribe((snapshot) => {
    const state = describeState(snapshot);
    if (state === lastState || snapshot.status !== "active") return;
    lastState = state;
    beat();
  });
  actor.start();
  beating.start();

  const done = toPromise(actor).finally(() => {
    beating.stop();
    heartbeats.unsubscribe();
    commands.unsubscribe();
  });
  const live = waitFor(
    actor,
    (snapshot) => snapshot.matches({ running: { projections: "live" } }) || snapshot.status === "done",
    { timeout: Infinity },
    // An actor stopped from outside (a process killed, a simulated crash) never went live either.
  ).then((snapshot) => snapshot.status !== "done", () => false);
  // Live once its clock is known to agree with the broker's (or its first beat never got stored).
  const settled = time.settle(timers);
  return { actor, projectors, done, live: live.then(async (up) => up && (await settled, true)) };
}
