import process from "node:process";
import { type Command, Option } from "commander";
import { AuthenticationError, limits, subjectToken, ValidationError } from "../../../events/mod.ts";
import { parseBytes, printLine } from "../format.ts";
import { systemClock } from "../../clock.ts";
import { loadConfig } from "../../config.ts";
import type { NatsConnection } from "@nats-io/nats-core";
import { runNode, type RunOptions, up } from "../../launcher/up.ts";
import { natsBus } from "../../nats/bus.ts";
import { cliLogger } from "../client.ts";
import { hostProfilePeer } from "../peer.ts";
import { profileOf } from "../session.ts";
import { createLogger } from "../../log.ts";
import { stopSignal } from "../signals.ts";

const environmentHelp =
  "\nEnvironment:\n  NATS_URL              broker to use, or a cluster's brokers comma-separated " +
  "(default nats://127.0.0.1:4290)\n" +
  "  VEIL_DATA             data folder (default ./.veil)\n" +
  "  VEIL_STREAM_REPLICAS  JetStream replicas (default 3 on a broker cluster of 3 or more, else 1)\n" +
  "  VEIL_TLS_CA           speak TLS to the broker, trusting only this CA file\n" +
  "  VEIL_LOG              debug, info, warn, error, silent (default info)";

/** Servers (and storage nodes) one `veil up` may run in its process. */
const serversPerProcessMax = 16;

function wholeNumber(text: string, option: string, min: number): number {
  const count = Number(text);
  if (!Number.isInteger(count) || count < min || count > serversPerProcessMax) {
    throw new ValidationError(`${option} must be a whole number from ${min} to ${serversPerProcessMax}, got ${text}`);
  }
  return count;
}

function run(
  serverIds: string[],
  runner: typeof up,
  storage?: { ids: string[]; capacityBytes: number },
  more: Pick<RunOptions, "afterLive" | "brokerNodes" | "tls"> = {},
) {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, clock: systemClock });
  return runner({
    config,
    serverIds,
    storage,
    logger,
    print: (line) => process.stdout.write(line + "\n"),
    signal: stopSignal(),
    ...more,
  });
}

function brokerClusterSize(text: string): number {
  const count = Number(text);
  if (!Number.isInteger(count) || count < 3 || count > limits.brokerClusterNodesMax) {
    throw new ValidationError(
      `--broker-cluster must be a whole number from 3 to ${limits.brokerClusterNodesMax} ` +
        `(a cluster of 2 stops when either node does), got ${text}`,
    );
  }
  return count;
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run veil on this machine: the broker (a private nats-server if none listens) and N server actors")
    .option("--servers <n>", `how many server actors to run in this process (1..${serversPerProcessMax})`, "3")
    .option("--prefix <name>", "server ids are <name>-1 .. <name>-N", "server")
    .option("--storage <n>", `how many storage nodes to run in this process (0..${serversPerProcessMax})`, "3")
    .option("--capacity <size>", "each storage node's capacity, e.g. 500MB, 10GB", "10GB")
    .option("--peer <profile...>", "also run the peer of these logged-in profiles (a demo of sharing in one terminal)")
    .option("--tls", "a private broker serves TLS, with <data>/broker/tls (a private CA made if missing)")
    .option(
      "--broker-cluster <n>",
      "when no broker answers, start N nats-servers as one cluster (3 to 5; streams get 3 replicas), " +
        "client ports from NATS_URL's up, routes 2000 above",
    )
    .addHelpText("after", environmentHelp)
    .action(
      async (
        options: {
          servers: string;
          prefix: string;
          storage: string;
          capacity: string;
          peer?: string[];
          brokerCluster?: string;
          tls?: boolean;
        },
      ) => {
        const count = wholeNumber(options.servers, "--servers", 1);
        const brokerNodes = options.brokerCluster === undefined ? undefined : brokerClusterSize(options.brokerCluster);
        const storageCount = wholeNumber(options.storage, "--storage", 0);
        const capacityBytes = parseBytes(options.capacity, "--capacity", limits.storageCapacityMaxBytes);
        const ids = Array.from(
          { length: count },
          (_, index) => subjectToken(`${options.prefix}-${index + 1}`, "--prefix"),
        );
        const storageIds = Array.from({ length: storageCount }, (_, index) => `storage-${index + 1}`);
        // Read before anything starts: a profile that is not logged in is a clear error, not a half-started demo.
        const peers = await Promise.all((options.peer ?? []).map(async (name) => {
          const stored = await profileOf({ profile: name }).session();
          if (!stored.accountKey) {
            throw new AuthenticationError(`log in again as ${stored.user} (profile ${name}) to unlock the vault here`);
          }
          return stored;
        }));
        const config = loadConfig();
        const afterLive = peers.length === 0 ? undefined : (nc: NatsConnection) =>
          peers.map((stored) => {
            const peer = hostProfilePeer({
              bus: natsBus(nc, cliLogger(config)),
              stored,
              logger: cliLogger(config),
              print: printLine,
              labelled: true,
            });
            process.stdout.write(`peer of ${stored.user} online\n`);
            return {
              id: `peer-${stored.user}`,
              live: Promise.resolve(true),
              done: peer.done,
              stop: () => peer.actor.getSnapshot().status === "active" && peer.actor.send({ type: "STOP" }),
            };
          });
        process.exitCode = await run(ids, up, { ids: storageIds, capacityBytes }, {
          ...(afterLive ? { afterLive } : {}),
          ...(brokerNodes ? { brokerNodes } : {}),
          ...(options.tls ? { tls: true } : {}),
        });
      },
    );
}

export function registerNode(program: Command): void {
  program
    .command("node")
    .description("run one actor in this process, on the broker at NATS_URL (for several machines)")
    .addOption(new Option("--role <role>", "what the node is").choices(["server", "storage"]).makeOptionMandatory())
    .requiredOption("--id <id>", "its id: letters, digits, - and _ (higher server ids win elections)")
    .option("--capacity <size>", "storage nodes: how much they may hold, e.g. 500MB, 10GB", "10GB")
    .addHelpText("after", environmentHelp)
    .action(async (options: { role: "server" | "storage"; id: string; capacity: string }) => {
      const id = subjectToken(options.id, "--id");
      if (options.role === "server") process.exitCode = await run([id], runNode);
      else {
        const capacityBytes = parseBytes(options.capacity, "--capacity", limits.storageCapacityMaxBytes);
        process.exitCode = await run([], runNode, { ids: [id], capacityBytes });
      }
    });
}
