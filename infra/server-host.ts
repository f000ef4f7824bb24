/**
 * Hosts a server actor on real infrastructure: provides the machine's effects with the
 * event log, snapshot store, clock and id source, and one Projector per projection.
 */
import { type Actor, createActor, fromCallback, fromPromise, toPromise, waitFor } from "xstate";
import type { Clock, EventLog, IdSource, Logger, SnapshotStore } from "../actors/ports.ts";
import { type ServerEvent, serverMachine, type ServerOutput } from "../actors/server/mod.ts";
import { nodeSubject, veilEvent } from "../events/mod.ts";
import { projections } from "../projections/mod.ts";
import { Projector } from "./projector.ts";

export interface ServerHostDeps {
  readonly nodeId: string;
  readonly log: EventLog;
  readonly snapshots: SnapshotStore;
  readonly clock: Clock;
  readonly ids: IdSource;
  readonly logger: Logger;
}

export interface HostedServer {
  readonly actor: Actor<typeof serverMachine>;
  readonly projectors: ReadonlyMap<string, Projector<unknown>>;
  /** Resolves with the machine's output once it reaches `stopped` or `failed`. */
  readonly done: Promise<ServerOutput>;
  /** Resolves true once the server is live (caught up), false if it finished first. */
  readonly live: Promise<boolean>;
}

export function hostServer(deps: ServerHostDeps): HostedServer {
  const { nodeId, log, snapshots, clock, ids, logger } = deps;
  const projectors = new Map(
    projections.map((projection) => [projection.name, new Projector({ log, snapshots, projection, logger })]),
  );
  const origin = () => ({ id: ids.next(), at: clock.now(), by: nodeId });

  const machine = serverMachine.provide({
    actors: {
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
  });

  const actor = createActor(machine, { input: { nodeId } });
  actor.start();
  const live = waitFor(actor, (snapshot) => snapshot.matches({ running: "live" }) || snapshot.status === "done")
    .then((snapshot) => snapshot.status !== "done");
  return { actor, projectors, done: toPromise(actor), live };
}
