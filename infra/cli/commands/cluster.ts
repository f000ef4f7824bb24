import process from "node:process";
import type { Command } from "commander";
import { limits, type NodesReply, nodesReply, UnavailableError } from "../../../events/mod.ts";
import { describeReplicas, type StreamReplicas, streamReplicas } from "../../nats/replicas.ts";
import { sendCommand } from "../../command-client.ts";
import { withConnection } from "../client.ts";
import { formatBytes, printLine, toJson } from "../format.ts";
import { table } from "../render.ts";

async function askNodes(): Promise<NodesReply> {
  return (await askCluster(false)).nodes;
}

/** What `veil health` reads: the servers' view of the nodes and, from the broker, how veil's streams are replicated. */
async function askCluster(withStreams: boolean): Promise<{ nodes: NodesReply; streams: StreamReplicas[] }> {
  return await withConnection(async ({ bus, nc }) => {
    let nodes: NodesReply;
    try {
      nodes = nodesReply.parse(await sendCommand(bus, "cluster.nodes"));
    } catch (error) {
      if (error instanceof UnavailableError) {
        throw new UnavailableError("no veil server answers; start one with `veil up`", { cause: error });
      }
      throw error;
    }
    return { nodes, streams: withStreams ? await streamReplicas(nc) : [] };
  }, "operator");
}
const print = printLine;
const age = (ms: number | null) => (ms === null ? "never" : ms < 1_000 ? `${ms}ms` : `${(ms / 1_000).toFixed(1)}s`);
const mebibytes = (bytes: number) => `${Math.round(bytes / 1024 / 1024)}MiB`;

export function registerCluster(program: Command): void {
  program
    .command("nodes")
    .description("list the nodes: id, role, state, leader, term, last heartbeat age, load")
    .option("--json", "print the list as JSON")
    .action(async (options: { json?: boolean }) => {
      const reply = await askNodes();
      if (options.json) {
        print(toJson(reply.nodes));
        return;
      }
      const rows = reply.nodes.map((node) => [
        node.id,
        node.role,
        node.state,
        node.leader ? "*" : "",
        String(node.term),
        age(node.lastHeartbeatAgeMs),
        `${node.inFlight} in flight, ${mebibytes(node.memoryBytes)}` +
        (node.capacityBytes ? `, ${mebibytes(node.bytesUsed ?? 0)}/${mebibytes(node.capacityBytes)}` : ""),
      ]);
      for (const line of table([["ID", "ROLE", "STATE", "LEADER", "TERM", "HEARTBEAT", "LOAD"], ...rows])) print(line);
    });

  program
    .command("storage")
    .description("the storage nodes: state, bytes used of capacity, chunks held, operations in flight")
    .option("--json", "print the list as JSON")
    .action(async (options: { json?: boolean }) => {
      const reply = await askNodes();
      const nodes = reply.nodes.filter((node) => node.role === "storage").map((node) => ({
        id: node.id,
        state: node.state,
        alive: node.alive,
        bytesUsed: node.bytesUsed ?? 0,
        capacityBytes: node.capacityBytes ?? 0,
        chunks: node.chunks ?? 0,
        inFlight: node.inFlight,
      }));
      if (options.json) return void print(toJson(nodes));
      if (nodes.length === 0) return void print("no storage nodes; start some with `veil up --storage N`");
      const rows = nodes.map((node) => [
        node.id,
        node.state,
        `${formatBytes(node.bytesUsed)} / ${formatBytes(node.capacityBytes)}`,
        node.capacityBytes > 0 ? `${((100 * node.bytesUsed) / node.capacityBytes).toFixed(1)}%` : "",
        String(node.chunks),
        String(node.inFlight),
      ]);
      for (const line of table([["NODE", "STATE", "USED / CAPACITY", "USED", "CHUNKS", "IN FLIGHT"], ...rows])) {
        print(line);
      }
    });

  program
    .command("health")
    .description(
      "is the cluster healthy: one leader, every recorded member alive, servers caught up with the log and their " +
        "clocks agreeing with the broker's, every replica of the log current",
    )
    .option("--json", "print the verdict as JSON")
    .action(async (options: { json?: boolean }) => {
      const { nodes: reply, streams } = await askCluster(true);
      const leaders = reply.nodes.filter((node) => node.alive && node.state === "leader");
      const missing = reply.nodes.filter((node) => node.membership === "joined" && !node.alive);
      const servers = reply.nodes.filter((node) => node.alive && node.role === "server");
      const problems = [
        ...(leaders.length === 1 ? [] : [`${leaders.length} leaders alive (want exactly 1)`]),
        ...missing.map((node) => `${node.id} (${node.role}) is silent for ${age(node.lastHeartbeatAgeMs)}`),
        ...servers.filter((node) => (node.lagMs ?? 0) > limits.projectionLagToleranceMs).map((node) =>
          `${node.id}'s state lags the log: behind for ${age(node.lagMs!)}`
        ),
        ...servers.filter((node) => Math.abs(node.clockOffsetMs ?? 0) > limits.clockSkewMaxMs).map((node) =>
          `${node.id}'s clock is ${age(Math.abs(node.clockOffsetMs!))} ${
            node.clockOffsetMs! > 0 ? "ahead of" : "behind"
          } the broker's: it refuses decisions that take the time`
        ),
        ...streams.flatMap((stream) => stream.problems.map((problem) => `${stream.name}: ${problem}`)),
      ];
      const verdict = {
        healthy: problems.length === 0,
        leader: reply.leader,
        alive: reply.nodes.filter((node) => node.alive).map((node) => node.id),
        streams: streams.map(({ problems: _, ...stream }) => stream),
        problems,
      };
      if (options.json) print(toJson(verdict));
      else {
        print(verdict.healthy ? "healthy" : "unhealthy");
        print(`leader: ${reply.leader ? `${reply.leader.node} (term ${reply.leader.term})` : "none"}`);
        print(`alive: ${verdict.alive.join(", ") || "none"}`);
        for (const stream of verdict.streams) print(`stream: ${describeReplicas(stream)}`);
        for (const problem of problems) print(`problem: ${problem}`);
      }
      if (!verdict.healthy) process.exitCode = 1;
    });

  program
    .command("topology")
    .description("show the cluster as a tree: the leader, the other servers, storage nodes and peers")
    .action(async () => {
      const reply = await askNodes();
      const alive = reply.nodes.filter((node) => node.alive);
      const leader = alive.find((node) => node.leader);
      print(`cluster (term ${reply.term})`);
      print(`└─ ${leader ? `${leader.id} (leader)` : "no leader"}`);
      const groups = [
        ["servers", alive.filter((node) => node.role === "server" && node !== leader)],
        ["storage", alive.filter((node) => node.role === "storage")],
        ["peers", alive.filter((node) => node.role === "peer")],
      ] as const;
      groups.forEach(([name, nodes], index) => {
        const last = index === groups.length - 1;
        print(`   ${last ? "└─" : "├─"} ${name}${nodes.length === 0 ? ": none" : ""}`);
        nodes.forEach((node, position) => {
          const branch = position === nodes.length - 1 ? "└─" : "├─";
          print(`   ${last ? " " : "│"}   ${branch} ${node.id} (${node.state})`);
        });
      });
    });
}
