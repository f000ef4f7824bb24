/**
 * Failover on real processes: three `veil node` servers on a private nats-server; the
 * leader is SIGKILLed ten times (and restarted, taking over again each time). Measured:
 * time from the kill to the next LeaderElected in the log (median, max; target median
 * <= 1.5 s) and election messages per failover (ALIVE excluded). The in-run reference is
 * detection (kill to the first ELECTION): the ratio shows what the election adds after it.
 */
import type { ChildProcess } from "node:child_process";
import type { EventLog } from "../../actors/ports.ts";
import { decodeMessage, limits, type VeilEvent } from "../../events/mod.ts";
import { startVeilNode } from "../server.ts";
import { type Figures, round2, type Suite, withPrivateNats } from "../suite.ts";

const kills = 10;
const startNode = (id: string, natsUrl: string) =>
  startVeilNode(["--role", "server", "--id", id], { NATS_URL: natsUrl, VEIL_CLUSTER_KEY: "5e".repeat(32) });

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
    const nodes = new Map<string, ChildProcess>();
    return await withPrivateNats("failover", async ({ nc, url, log }) => {
      try {
        const messages: { at: number; kind: string; from: string }[] = [];
        const listeners = new Set<() => void>();
        nc.subscribe("veil.election.>", {
          callback: (_, message) => {
            const { kind = "?", from = "?" } = decodeMessage(message.data) as { kind?: string; from?: string };
            if (kind !== "alive") messages.push({ at: Date.now(), kind, from });
            for (const listener of listeners) listener();
          },
        });
        /** Waits, with a bound, until a message matching `test` has been seen. */
        const seen = (test: (message: (typeof messages)[number]) => boolean, timeoutMs: number) =>
          new Promise<(typeof messages)[number]>((resolve, reject) => {
            const check = () => {
              const found = messages.find(test);
              if (!found) return;
              listeners.delete(check);
              clearTimeout(timer);
              resolve(found);
            };
            const timer = setTimeout(() => {
              listeners.delete(check);
              reject(new Error(`no such election message within ${timeoutMs} ms`));
            }, timeoutMs);
            listeners.add(check);
            check();
          });
        for (const id of ["server-1", "server-2", "server-3"]) nodes.set(id, await startNode(id, url));
        let last = await nextElection(log, 1, 15_000);
        while (last.event.data.node !== "server-3") last = await nextElection(log, last.seq + 1, 15_000);

        const failovers: number[] = [];
        const detections: number[] = [];
        const messageCounts: number[] = [];
        for (let kill = 0; kill < kills; kill++) {
          const victim: string = last.event.data.node;
          const killedAt = Date.now();
          nodes.get(victim)!.kill("SIGKILL");
          const next = await nextElection(log, last.seq + 1, 15_000);
          failovers.push(next.storedAt - killedAt);
          // Detection: the first ELECTION after the kill, i.e. a follower noticed the silence.
          detections.push(
            (await seen((message) => message.at >= killedAt && message.kind === "election", 5_000)).at - killedAt,
          );
          // Messages of this election: from the kill until the winner's COORDINATOR (sent after its append).
          const winner = next.event.data.node;
          const announced = await seen(
            (message) => message.at >= killedAt && message.kind === "coordinator" && message.from === winner,
            5_000,
          );
          messageCounts.push(messages.filter((message) => message.at >= killedAt && message.at <= announced.at).length);
          report(`kill ${kill + 1}: ${victim} -> ${next.event.data.node} in ${next.storedAt - killedAt} ms`);
          // The victim comes back and, being the highest id, takes over again.
          nodes.set(victim, await startNode(victim, url));
          last = await nextElection(log, next.seq + 1, 15_000);
          while (last.event.data.node !== victim) last = await nextElection(log, last.seq + 1, 15_000);
        }
        const figures = {
          kills,
          failover_median_ms: median(failovers),
          failover_max_ms: Math.max(...failovers),
          election_messages_median: median(messageCounts),
          detection_median_ms: median(detections),
          failover_to_detection_ratio: round2(median(failovers) / median(detections)),
        } satisfies Figures;
        report(
          `failover: median ${figures.failover_median_ms} ms, max ${figures.failover_max_ms} ms (target median <= 1500 ms); ` +
            `${figures.election_messages_median} election messages per failover; detection (kill to first ELECTION, ` +
            `leader timeout ${limits.leaderTimeoutMs} ms) median ${figures.detection_median_ms} ms, ` +
            `failover / detection = ${figures.failover_to_detection_ratio}`,
        );
        return figures;
      } finally {
        for (const child of nodes.values()) child.kill("SIGKILL");
      }
    });
  },
};
