/**
 * Server actors hosted in this process on a real nats-server: commands in one queue group,
 * leader-only commands forwarded to the leader, placement from storage heartbeats, and bad
 * election and heartbeat traffic ignored.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeMessage, leaderSubject, type NodeTicket, VeilError } from "../../events/mod.ts";
import { randomIds, systemClock } from "../../infra/clock.ts";
import { defaultHeartbeatTimeouts } from "../../projections/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { openSnapshotStore } from "../../infra/nats/snapshots.ts";
import { sendCommand } from "../../infra/command-client.ts";
import { type HostedServer, hostServer } from "../../infra/server/host.ts";
import { waitForEvent } from "../support/events.ts";
import { openGrantShareStore } from "../../infra/nats/grant-shares.ts";
import { testIdentity, testTicketKeys } from "../support/identity.ts";
import { verifyTicket } from "../../actors/storage-node/tickets.ts";
import { recordingLogger, silentLogger } from "../support/logger.ts";
import { useNatsServer, waitForHeartbeat } from "../support/nats.ts";

const nats = useNatsServer();
const servers: HostedServer[] = [];
const warnings = recordingLogger();

beforeAll(async () => {
  const snapshots = await openSnapshotStore(nats.nc, { replicas: 1 });
  const grantShares = await openGrantShareStore(nats.nc, { replicas: 1 });
  for (const nodeId of ["node-a", "node-b"]) {
    servers.push(hostServer({
      nodeId,
      bus: natsBus(nats.nc, silentLogger),
      log: nats.log,
      snapshots,
      grantShares,
      clock: systemClock,
      ids: randomIds,
      logger: warnings.logger,
      heartbeatTimeouts: defaultHeartbeatTimeouts,
      ...testIdentity(),
    }));
  }
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected" && event.data.node === "node-b", {
    timeoutMs: 10_000,
    what: "node-b elected",
  });
  await waitForHeartbeat(nats.nc, "node-a", (beat) => beat.leader === "node-b", 5_000);
});

afterAll(async () => {
  for (const server of servers) server.actor.send({ type: "STOP" });
  await Promise.all(servers.map((server) => server.done));
});

/** Only the storage identity may heartbeat as a storage node. */
const storageBeat = (node: string, bytesUsed: number) =>
  nats.storage.publish(
    `veil.hb.storage.${node}`,
    encodeMessage({
      node,
      role: "storage",
      state: "ready",
      term: 0,
      inFlight: 0,
      memoryBytes: 1,
      bytesUsed,
      capacityBytes: 1e9,
      sentAt: Date.now(),
    }),
  );

describe("cluster commands", () => {
  it("spreads commands over the servers in the queue group", async () => {
    const bus = natsBus(nats.nc, silentLogger);
    const answeredBy = new Set<string>();
    for (let index = 0; index < 40 && answeredBy.size < 2; index++) {
      answeredBy.add((await sendCommand(bus, "cluster.nodes") as { answeredBy: string }).answeredBy);
    }
    expect([...answeredBy].sort()).toEqual(["node-a", "node-b"]);
  });

  it("answers cluster.nodes from any server", async () => {
    const reply = await sendCommand(natsBus(nats.nc, silentLogger), "cluster.nodes") as {
      leader: { node: string };
      nodes: { id: string; state: string; leader: boolean }[];
    };
    expect(reply.leader.node).toBe("node-b");
    expect(reply.nodes.map((node) => [node.id, node.state, node.leader])).toEqual([
      ["node-a", "follower", false],
      ["node-b", "leader", true],
    ]);
  });

  it("answers cluster.keys from every server with the cluster's ticket public key", async () => {
    // The queue group spreads the asks over both servers; none is forwarded to the leader.
    const bus = natsBus(nats.nc, silentLogger);
    for (let index = 0; index < 10; index++) {
      const { ticketKey } = await sendCommand(bus, "cluster.keys") as { ticketKey: Uint8Array };
      expect(new Uint8Array(ticketKey)).toEqual(testTicketKeys.publicKey);
    }
  });

  it("forwards placement to the leader, which places on the least-loaded healthy storage nodes, with put tickets", async () => {
    storageBeat("storage-1", 900);
    storageBeat("storage-2", 100);
    storageBeat("storage-3", 500);
    await waitForHeartbeat(nats.nc, "node-b", () => true, 5_000); // the beats above arrived before this one
    const forwarded: string[] = [];
    const spy = nats.nc.subscribe("veil.lead.>", { callback: (_, message) => void forwarded.push(message.subject) });
    const bus = natsBus(nats.nc, silentLogger);
    const chunks = [{ hash: "c3".repeat(32), bytes: 1_000 }, { hash: "d4".repeat(32), bytes: 600 }];
    for (let index = 0; index < 6; index++) {
      const placed = await sendCommand(bus, "cluster.place", { chunks, replicas: 2 }) as {
        nodes: string[];
        tickets: NodeTicket[];
      };
      expect(placed.nodes).toEqual(["storage-2", "storage-3"]);
      expect(placed.tickets.map(({ node }) => node)).toEqual(placed.nodes);
      for (const { node, ticket } of placed.tickets) {
        expect(verifyTicket(testTicketKeys.publicKey, ticket, { node, now: Date.now() })).toMatchObject({
          op: "put",
          hashes: chunks.map((chunk) => chunk.hash),
          bytesMax: 1_000,
        });
      }
    }
    await nats.nc.flush();
    spy.unsubscribe();
    expect(forwarded).toEqual(Array(6).fill("veil.lead.cluster.place"));
  });

  it("returns typed errors: bad placement requests, too few nodes, unknown commands", async () => {
    const bus = natsBus(nats.nc, silentLogger);
    const failure = (name: string, data: unknown) =>
      sendCommand(bus, name, data).then(() => undefined, (error: VeilError) => [error.code, error.message]);
    const chunk = { hash: "e5".repeat(32), bytes: 1 };
    expect(await failure("cluster.place", { chunks: [{ ...chunk, bytes: -5 }], replicas: 2 })).toEqual([
      "validation",
      expect.stringMatching(/chunks\.0\.bytes/),
    ]);
    // Without the chunks' hashes there is nothing to write a ticket for.
    expect(await failure("cluster.place", { bytes: 1_000, replicas: 2 })).toEqual([
      "validation",
      expect.stringMatching(/chunks: expected an array/),
    ]);
    expect(await failure("cluster.place", { chunks: [chunk], replicas: 5 })).toEqual([
      "unavailable",
      expect.stringMatching(/needs 5 healthy storage nodes/),
    ]);
    expect(await failure("cluster.nonsense", {})).toEqual(["not-found", "unknown command cluster.nonsense"]);
  });

  it("ignores malformed, stale and unbacked election and heartbeat traffic", async () => {
    const termsBefore = (await nats.log.readAggregate(leaderSubject)).records.length;
    nats.nc.publish("veil.election.coordinator", new Uint8Array([0xc1]));
    nats.nc.publish("veil.election.coordinator", encodeMessage({ kind: "coordinator", from: "node-a", term: 1 }));
    nats.nc.publish("veil.election.alive", encodeMessage({ kind: "alive", from: "intruder", term: 99 }));
    nats.nc.publish("veil.election.resign", encodeMessage({ kind: "resign", from: "node-b", term: 0 }));
    nats.nc.publish("veil.hb.server.node-z", encodeMessage({ node: "node-z", role: "wizard" }));
    nats.nc.publish("veil.hb.server.node-z", new TextEncoder().encode("garbage"));
    // A body claiming to be another node than its subject names.
    nats.nc.publish(
      "veil.hb.server.node-z",
      encodeMessage({
        node: "node-a",
        role: "server",
        state: "leader",
        term: 9,
        inFlight: 0,
        memoryBytes: 1,
        sentAt: Date.now(),
      }),
    );
    // Two more leader heartbeats later, nothing has changed.
    await waitForHeartbeat(nats.nc, "node-a", (beat) => beat.leader === "node-b", 5_000);
    await waitForHeartbeat(nats.nc, "node-a", (beat) => beat.leader === "node-b", 5_000);
    expect((await nats.log.readAggregate(leaderSubject)).records).toHaveLength(termsBefore);
    expect(servers.every((server) => server.actor.getSnapshot().status === "active")).toBe(true);
    expect(warnings.warnings).toEqual(
      expect.arrayContaining([
        "ignored malformed heartbeat",
        "ignored a heartbeat whose body does not match its subject",
      ]),
    );
  });
});
