/**
 * The event store against raw JetStream on the same private server in the same run:
 * - append throughput of `NatsEventLog.append` (validate, encode, headers, Nats-Msg-Id)
 *   over raw `js.publish` of the same bytes; target ratio >= 0.8. A third path, raw
 *   `js.publish` with the same headers and msg id, shows how much of the gap is the wire
 *   format the design requires and how much is the event store's own work;
 * - projection rebuild (`projectUntil`, decode + fold) over a 100k-event log, in events/s
 *   (target >= 100k/s) and as a ratio to a bare ordered-consumer loop over the same log.
 */
import { DeliverPolicy } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { encodeEvent, veilEvent } from "../../events/mod.ts";
import type { Projection } from "../../projections/mod.ts";
import { eventStreamName } from "../../infra/nats/streams.ts";
import { projectUntil } from "../../actors/server/projector.ts";
import { bestRate, type Figures, pipelined, round2, type Suite, withPrivateNats } from "../suite.ts";

const appendCount = 5_000;
const appendWindow = 64;
const rebuildCount = 100_000;
const rounds = 3;
const appendRounds = 6;
const aggregates = 100;
const silent = { debug() {}, info() {}, warn() {}, error() {} };

const counting: Projection<number> = {
  name: "count",
  description: "counts events",
  version: 1,
  initial: () => 0,
  evolve: (count) => count + 1,
};

let sequence = 0;
const event = (index: number) =>
  veilEvent("NodeJoined", { node: `bench-${index % aggregates}`, role: "server" }, {
    id: `bench-${++sequence}`,
    at: 1_700_000_000_000 + index,
    by: "bench",
  });
const subjectOf = (index: number) => `veil.evt.node.bench-${index % aggregates}`;

export const eventstoreSuite: Suite = {
  name: "eventstore",
  description: "append throughput vs raw js.publish; projection rebuild vs a bare consumer loop",
  async run(report) {
    return await withPrivateNats("eventstore", async ({ js, log }) => {
      // Warm both paths once so neither pays for connection and stream setup.
      await pipelined(500, appendWindow, (index) => js.publish(subjectOf(index), encodeEvent(event(index))));

      // The three paths take turns, in an order that rotates each round, and each keeps its
      // best round: drift on a shared machine, and warm-up, hit all of them alike.
      const paths = {
        raw: async () => {
          const payloads = Array.from({ length: appendCount }, (_, index) => encodeEvent(event(index)));
          await pipelined(appendCount, appendWindow, (index) => js.publish(subjectOf(index), payloads[index]));
        },
        headed: async () => {
          const events = Array.from({ length: appendCount }, (_, index) => event(index));
          const payloads = events.map((one) => encodeEvent(one));
          await pipelined(appendCount, appendWindow, (index) => {
            const messageHeaders = headers();
            messageHeaders.set("Veil-Type", "NodeJoined");
            messageHeaders.set("Veil-Version", "1");
            messageHeaders.set("Content-Type", "application/msgpack");
            return js.publish(subjectOf(index), payloads[index], { msgID: events[index]!.id, headers: messageHeaders });
          });
        },
        append: async () => {
          const events = Array.from({ length: appendCount }, (_, index) => event(index));
          await pipelined(appendCount, appendWindow, (index) => log.append(subjectOf(index), [events[index]!]));
        },
      };
      const names = Object.keys(paths) as (keyof typeof paths)[];
      const best = { raw: 0, headed: 0, append: 0 };
      for (let round = 0; round < appendRounds; round++) {
        for (let turn = 0; turn < names.length; turn++) {
          const name = names[(round + turn) % names.length]!;
          best[name] = Math.max(best[name], await bestRate(1, appendCount, paths[name]));
        }
      }
      const { raw: rawRate, headed: headedRate, append: appendRate } = best;
      report(
        `append: ${Math.round(appendRate)} events/s vs raw js.publish ${Math.round(rawRate)} msgs/s ` +
          `= ratio ${round2(appendRate / rawRate)} (target >= 0.8)`,
      );
      report(
        `  of which the headers and Nats-Msg-Id the design requires: raw js.publish with them ` +
          `${Math.round(headedRate)} msgs/s = ratio ${round2(headedRate / rawRate)}; ` +
          `event store vs that = ratio ${round2(appendRate / headedRate)}`,
      );

      // Fill to 100k events, then read them all back both ways.
      const missing = rebuildCount - (await log.lastSeq());
      await pipelined(missing, 256, (index) => js.publish(subjectOf(index), encodeEvent(event(index))));
      const total = await log.lastSeq();

      const bareRate = await bestRate(rounds, total, async () => {
        const consumer = await js.consumers.get(eventStreamName, { deliver_policy: DeliverPolicy.All });
        const messages = await consumer.consume({ max_messages: 1_024 });
        for await (const message of messages) if (message.seq >= total) break;
        await messages.close();
      });
      let folded = 0;
      const rebuildRate = await bestRate(rounds, total, async () => {
        folded = (await projectUntil({ log, projection: counting, logger: silent })).state;
      });
      if (folded !== total) throw new Error(`rebuild folded ${folded} of ${total} events`);
      report(
        `rebuild: ${Math.round(rebuildRate)} events/s over ${total} events (target >= 100000) vs bare consumer ` +
          `${Math.round(bareRate)} msgs/s = ratio ${round2(rebuildRate / bareRate)}`,
      );

      return {
        append_events_per_s: Math.round(appendRate),
        raw_publish_per_s: Math.round(rawRate),
        append_ratio: round2(appendRate / rawRate),
        raw_with_headers_per_s: Math.round(headedRate),
        headers_ratio: round2(headedRate / rawRate),
        append_vs_headers_ratio: round2(appendRate / headedRate),
        rebuild_events: total,
        rebuild_events_per_s: Math.round(rebuildRate),
        bare_consumer_per_s: Math.round(bareRate),
        rebuild_ratio: round2(rebuildRate / bareRate),
      } satisfies Figures;
    });
  },
};
