/**
 * The server machine's election effects, built from ports: on NATS the host passes the
 * NATS bus and JetStream log, in the simulator the simulated ones. Same code, so what the
 * simulator proves is what runs.
 */
import { assign, fromCallback, fromPromise } from "xstate";
import { type ElectionKind, electionMessage, electionSubject, leaderSubject, veilEvent } from "../../events/mod.ts";
import type { Bus, Clock, EventLog, IdSource, LogFields, Logger, LogRecord } from "../ports.ts";
import type { PeerMessage, ServerContext, ServerEvent } from "./machine.ts";

export interface ElectionPorts {
  readonly bus: Bus;
  readonly log: EventLog;
  readonly clock: Clock;
  readonly ids: IdSource;
  readonly logger: Logger;
  /** The winner of the latest term as the log records it (a live projection), if any. */
  readonly recordedLeader: () => { readonly node: string; readonly term: number } | undefined;
  /** Whether the log records this id as a server that joined (and has not left). */
  readonly isServer: (node: string) => boolean;
}

/** Messages that claim leadership; only the log's own winner of that term is believed. */
const leadershipKinds: ReadonlySet<ElectionKind> = new Set(["coordinator", "alive", "resign"]);

type EffectInput = { readonly nodeId: string };
type ActionArguments = { context: ServerContext; event: ServerEvent };

const eventTypes: Record<ElectionKind, PeerEventType> = {
  election: "ELECTION",
  answer: "ANSWER",
  coordinator: "COORDINATOR",
  alive: "ALIVE",
  resign: "RESIGN",
};
type PeerEventType = Extract<ServerEvent, PeerMessage>["type"];

/** The latest term recorded in the log, reading past undecodable entries on the leader subject. */
async function latestTerm(log: EventLog): Promise<{ term: number; seq: number }> {
  const termOf = (record: LogRecord | undefined) =>
    record?.ok && record.event.type === "LeaderElected" ? record.event.data.term : undefined;
  const last = await log.readLast(leaderSubject);
  if (!last) return { term: 0, seq: 0 };
  const term = termOf(last);
  if (term !== undefined) return { term, seq: last.seq };
  // Junk on the leader subject must not stop elections: find the last real term before it.
  const { records } = await log.readAggregate(leaderSubject);
  const terms = records.map(termOf).filter((known): known is number => known !== undefined);
  return { term: Math.max(0, ...terms), seq: last.seq };
}

export function electionEffects(ports: ElectionPorts) {
  const { bus, log, clock, ids, logger, recordedLeader, isServer } = ports;
  const fields = (context: ServerContext, event: ServerEvent): LogFields => ({
    node: context.nodeId,
    term: context.term,
    message: event.type,
    from: (event as Partial<PeerMessage>).from,
    messageTerm: (event as Partial<PeerMessage>).term,
  });
  const broadcast = (kind: ElectionKind) => ({ context }: ActionArguments) =>
    bus.publish(electionSubject(kind), { kind, from: context.nodeId, term: context.term });

  return {
    guards: {
      isSupersededInLog: ({ context }: ActionArguments) => (recordedLeader()?.term ?? 0) > context.term,
    },
    actors: {
      listen: fromCallback<ServerEvent, EffectInput>(({ sendBack, input }) => {
        const subscription = bus.subscribe("veil.election.>", (message) => {
          let parsed;
          try {
            parsed = electionMessage.parse(message.data);
          } catch (error) {
            logger.warn("ignored malformed election message", {
              node: input.nodeId,
              subject: message.subject,
              reason: (error as Error).message,
            });
            return;
          }
          // Our own broadcasts come back to us, and answers are for one node only.
          if (parsed.from === input.nodeId) return;
          if (parsed.kind === "answer" && parsed.to !== input.nodeId) return;
          // A forged or replayed ANSWER from a node that is not a server could keep the
          // highest node waiting forever; only servers the log knows take part.
          if (!isServer(parsed.from)) {
            // Info, not warn: a node that has just joined is briefly unknown to the others.
            logger.info("ignored an election message from a node that is not a known server", {
              node: input.nodeId,
              kind: parsed.kind,
              from: parsed.from,
            });
            return;
          }
          // A claim the log does not back (a stale term, an unknown node, or a log this node
          // has not caught up with yet) is dropped; the real leader repeats ALIVE shortly.
          const recorded = recordedLeader();
          if (leadershipKinds.has(parsed.kind) && (recorded?.node !== parsed.from || recorded.term !== parsed.term)) {
            logger.debug("ignored a leadership claim the log does not back", {
              node: input.nodeId,
              kind: parsed.kind,
              from: parsed.from,
              term: parsed.term,
              recordedLeader: recorded?.node,
              recordedTerm: recorded?.term,
            });
            return;
          }
          sendBack({ type: eventTypes[parsed.kind], from: parsed.from, term: parsed.term });
        });
        return () => subscription.unsubscribe();
      }),
      claimLeadership: fromPromise<{ term: number }, EffectInput>(async ({ input }) => {
        const latest = await latestTerm(log);
        const term = latest.term + 1;
        const claim = veilEvent("LeaderElected", { term, node: input.nodeId }, {
          id: ids.next(),
          at: clock.now(),
          by: input.nodeId,
        });
        // The expected sequence is the fence: if anyone claimed since we looked, this fails.
        await log.append(leaderSubject, [claim], { expectedSubjectSeq: latest.seq });
        logger.info("won the election", { node: input.nodeId, term });
        return { term };
      }),
    },
    actions: {
      broadcastElection: broadcast("election"),
      broadcastCoordinator: broadcast("coordinator"),
      broadcastAlive: broadcast("alive"),
      broadcastResign: broadcast("resign"),
      sendAnswer: ({ context, event }: ActionArguments) => {
        const to = (event as PeerMessage).from;
        bus.publish(electionSubject("answer", to), { kind: "answer", from: context.nodeId, term: context.term, to });
      },
      logIgnored: ({ context, event }: ActionArguments) =>
        logger.debug("election message changed nothing", fields(context, event)),
      adoptRecordedLeader: assign<ServerContext, ServerEvent, unknown, ServerEvent, never>({
        leader: ({ context }) => recordedLeader()?.node ?? context.leader,
        term: ({ context }) => Math.max(context.term, recordedLeader()?.term ?? 0),
      }),
      logSuperseded: ({ context, event }: ActionArguments) =>
        logger.info("the log records a newer term; no longer leading", {
          ...fields(context, event),
          recordedTerm: recordedLeader()?.term,
        }),
      logStepDown: ({ context, event }: ActionArguments) =>
        logger.info("lost the claim for a term; following", {
          ...fields(context, event),
          reason: (event as { error?: Error }).error?.message,
        }),
    },
  };
}
