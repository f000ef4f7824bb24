/**
 * The log on a broker cluster of three (streams with three replicas) against one broker
 * (one replica), in the same run: the price of surviving a node's loss.
 * - append throughput, one at a time (a command's latency) and pipelined (the log's
 *   capacity): R3 over R1;
 * - failover: appends go on, one at a time, while the stream leader's node is SIGKILLed;
 *   the time from the kill to the next acknowledged append (median and max of ten kills,
 *   each node restarted after), as a share of the append retry window (limits.appendRetryWindowMs)
 *   a command waits before it gives up; and nothing acknowledged lost, nothing doubled.
 */
import process from "node:process";
import { limits, veilEvent } from "../../events/mod.ts";
import { eventStreamName } from "../../infra/nats/streams.ts";
import type { NatsEventLog } from "../../infra/nats/event-log.ts";
import { bestRate, type Figures, pipelined, round2, type Suite, withPrivateNats } from "../suite.ts";

const serialCount = 500;
const pipelinedCount = 3_000;
const window = 64;
const rounds = 3;
const kills = 10;
/** How long a restarted node may take to catch up before the run is abandoned. */
const catchUpBoundMs = 60_000;

let sequence = 0;
const event = (index: number) =>
  veilEvent("NodeJoined", { node: `bench-${index}`, role: "server" }, {
    id: `cluster-bench-${process.pid}-${++sequence}`,
    at: 1_700_000_000_000 + index,
    by: "bench",
  });
const subjectOf = (index: number) => `veil.evt.node.bench-${index % 100}`;

async function appendRates(log: NatsEventLog) {
  await pipelined(200, window, (index) => log.append(subjectOf(index), [event(index)]));
  const serial = await bestRate(rounds, serialCount, async () => {
    for (let index = 0; index < serialCount; index++) await log.append(subjectOf(index), [event(index)]);
  });
  const piped = await bestRate(
    rounds,
    pipelinedCount,
    () => pipelined(pipelinedCount, window, (index) => log.append(subjectOf(index), [event(index)])),
  );
  return { serial, piped };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

export const clusterSuite: Suite = {
  name: "cluster",
  description: "appends on a broker cluster of three (R3) vs one broker (R1); SIGKILL of the stream leader to next ack",
  async run(report) {
    const one = await withPrivateNats("cluster-r1", ({ log }) => appendRates(log));
    report(`R1: ${Math.round(one.serial)} appends/s one at a time, ${Math.round(one.piped)}/s pipelined`);
    return await withPrivateNats("cluster-r3", async ({ log, jsm, broker }) => {
      const three = await appendRates(log);
      report(`R3: ${Math.round(three.serial)} appends/s one at a time, ${Math.round(three.piped)}/s pipelined`);

      const gaps: number[] = [];
      let acknowledged = 0;
      for (let kill = 0; kill < kills; kill++) {
        const leader = (await jsm.streams.info(eventStreamName)).cluster?.leader;
        const victim = broker.nodes.findIndex((node) => node.serverName === leader);
        if (victim < 0) throw new Error(`no node leads ${eventStreamName}`);
        let killedAt = 0;
        let gap = 0;
        for (let index = 0; gap === 0; index++) {
          if (index === 50) {
            killedAt = performance.now();
            process.kill(broker.nodes[victim]!.pid, "SIGKILL");
          }
          await log.append(`veil.evt.node.failover-${kill}-${index}`, [event(index)]);
          acknowledged++;
          if (killedAt > 0) gap = performance.now() - killedAt;
        }
        gaps.push(gap);
        await broker.restart(victim);
        // Let the restarted node catch up before the next kill, so each kill leaves a quorum.
        const catchUpBy = performance.now() + catchUpBoundMs;
        for (;;) {
          const replicas = (await jsm.streams.info(eventStreamName)).cluster?.replicas ?? [];
          if (replicas.length === 2 && replicas.every((replica) => replica.current)) break;
          if (performance.now() > catchUpBy) throw new Error(`node ${victim} did not catch up in ${catchUpBoundMs} ms`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      }
      let stored = 0;
      for await (const record of log.replay({ subject: "veil.evt.node.>" })) {
        if (record.ok && record.subject.startsWith("veil.evt.node.failover-")) stored++;
      }
      report(
        `kill to next ack: median ${Math.round(median(gaps))} ms, max ${Math.round(Math.max(...gaps))} ms ` +
          `(${kills} kills); ${acknowledged} acknowledged, ${stored} stored`,
      );
      const figures: Figures = {
        r1_serial_appends_per_s: Math.round(one.serial),
        r3_serial_appends_per_s: Math.round(three.serial),
        r3_over_r1_serial_ratio: round2(three.serial / one.serial),
        r3_over_r1_pipelined_ratio: round2(three.piped / one.piped),
        failover_median_ms: Math.round(median(gaps)),
        failover_max_ms: Math.round(Math.max(...gaps)),
        failover_of_retry_window_ratio: round2(Math.max(...gaps) / limits.appendRetryWindowMs),
        lost_or_doubled: Math.abs(stored - acknowledged),
      };
      return figures;
    }, { nodes: 3 });
  },
};
