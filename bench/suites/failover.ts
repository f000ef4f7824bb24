/**
 * Failover on real processes: three `veil node` servers on a private nats-server; the
 * leader is SIGKILLed ten times (and restarted, taking over again each time). Measured:
 * time from the kill to the next LeaderElected in the log (median, max; target median
 * <= 1.5 s) and election messages per failover (heartbeats excluded). The ratio compares
 * the median with the configured leader timeout, the part no election can avoid.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import type { EventLog } from "../../actors/ports.ts";
import { decodeMessage, limits, type VeilEvent } from "../../events/mod.ts";
import { connectNats, openJetStream } from "../../infra/nats/connection.ts";
import { NatsEventLog } from "../../infra/nats/event-log.ts";
import { startNatsServer } from "../../infra/nats/server-process.ts";
import { ensureStreams } from "../../infra/nats/streams.ts";
import { type Figures, round2, type Suite } from "../suite.ts";

const kills = 10;
const bin = fileURLToPath(new URL("../../infra/cli/bin.js", import.meta.url));

function startNode(id: string, natsUrl: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [bin, "node", "--role", "server", "--id", id], {
    env: { ...process.env, NATS_URL: natsUrl, VEIL_LOG: process.env.VEIL_BENCH_LOG ?? "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let output = "";
    child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
      output += chunk;
      if (output.includes("Press Ctrl-C")) resolve(child);
    });
    child.once("exit", (code) => reject(new Error(`${id} exited (${code}) before it was up`)));
  });
}

async function nextElection(log: EventLog, fromSeq: number, timeoutMs: number) {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    for await (const record of log.follow({ fromSeq, subject: "veil.evt.cluster.leader", signal: abort.signal })) {
      if (record.ok && record.event.type === "LeaderElected") {
        return {
          seq: record.seq,
          storedAt: record.storedAt,
          event: record.event as Extract<VeilEvent, { type: "LeaderElected" }>,
        };
      }
    }
    throw new Error(`no election within ${timeoutMs} ms`);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

export const failoverSuite: Suite = {
  name: "failover",
  description: "SIGKILL the leader of three `veil node` servers: time to the next LeaderElected, messages per election",
  async run(report) {
    const storeFolder = await mkdtemp(join(tmpdir(), "veil-bench-failover-"));
    const server = await startNatsServer({ storeFolder });
    const nc = await connectNats(server.url, { name: "veil-bench-failover" });
    const nodes = new Map<string, ChildProcess>();
    try {
      const { js, jsm } = await openJetStream(nc, server.url);
      await ensureStreams(jsm, { replicas: 1 });
      const log = new NatsEventLog(js, jsm);
      const messages: { at: number; kind: string }[] = [];
      nc.subscribe("veil.election.>", {
        callback: (_, message) => {
          const kind = (decodeMessage(message.data) as { kind?: string }).kind ?? "?";
          if (kind !== "alive") messages.push({ at: Date.now(), kind });
        },
      });
      for (const id of ["server-1", "server-2", "server-3"]) nodes.set(id, await startNode(id, server.url));
      let last = await nextElection(log, 1, 15_000);
      while (last.event.data.node !== "server-3") last = await nextElection(log, last.seq + 1, 15_000);

      const failovers: number[] = [];
      const messageCounts: number[] = [];
      for (let kill = 0; kill < kills; kill++) {
        const victim: string = last.event.data.node;
        const killedAt = Date.now();
        nodes.get(victim)!.kill("SIGKILL");
        const next = await nextElection(log, last.seq + 1, 15_000);
        failovers.push(next.storedAt - killedAt);
        // Messages of this election: from the kill until the winner announced itself.
        const announced = messages.findIndex((message) => message.at >= killedAt && message.kind === "coordinator");
        messageCounts.push(messages.filter((message, index) => message.at >= killedAt && index <= announced).length);
        report(`kill ${kill + 1}: ${victim} -> ${next.event.data.node} in ${next.storedAt - killedAt} ms`);
        // The victim comes back and, being the highest id, takes over again.
        nodes.set(victim, await startNode(victim, server.url));
        last = await nextElection(log, next.seq + 1, 15_000);
        while (last.event.data.node !== victim) last = await nextElection(log, last.seq + 1, 15_000);
      }
      const figures = {
        kills,
        failover_median_ms: median(failovers),
        failover_max_ms: Math.max(...failovers),
        election_messages_median: median(messageCounts),
        failover_median_to_leader_timeout_ratio: round2(median(failovers) / limits.leaderTimeoutMs),
      } satisfies Figures;
      report(
        `failover: median ${figures.failover_median_ms} ms, max ${figures.failover_max_ms} ms (target median <= 1500 ms); ` +
          `${figures.election_messages_median} election messages per failover; ` +
          `median / leader timeout (${limits.leaderTimeoutMs} ms) = ${figures.failover_median_to_leader_timeout_ratio}`,
      );
      return figures;
    } finally {
      for (const child of nodes.values()) child.kill("SIGKILL");
      await nc.close();
      await server.stop();
      await rm(storeFolder, { recursive: true, force: true });
    }
  },
};
