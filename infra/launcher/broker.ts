/**
 * Finding the broker: connect to NATS_URL; when nothing answers there and the URL is on
 * this machine, start a private nats-server with JetStream that stores under the data
 * folder and lives as long as the launcher.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "../../actors/ports.ts";
import { UnavailableError } from "../../events/mod.ts";
import { displayUrl } from "../log.ts";
import { connectNats } from "../nats/connection.ts";
import {
  findNatsServerBinary,
  natsInstallHint,
  type NatsServerProcess,
  startNatsServer,
} from "../nats/server-process.ts";

export interface Broker {
  readonly nc: NatsConnection;
  /** Where the broker is, fit to show (no credentials). */
  readonly url: string;
  /** The nats-server this launcher started, if it had to. */
  readonly privateServer?: NatsServerProcess & { readonly storeFolder: string };
}

const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

export async function reachBroker(options: {
  natsUrl: string;
  dataFolder: string;
  name: string;
  logger: Logger;
  /** Where to look for nats-server; tests pass one that finds nothing. */
  findBinary?: () => string | undefined;
}): Promise<Broker> {
  const { natsUrl, dataFolder, name, logger, findBinary = findNatsServerBinary } = options;
  try {
    return { nc: await connectNats(natsUrl, { name }), url: displayUrl(natsUrl) };
  } catch (error) {
    if (!(error instanceof UnavailableError)) throw error;
    const url = new URL(natsUrl);
    // Only an empty local port means "nothing runs here"; a broker that refuses us, or
    // something else on the port, must not be shadowed by a private server.
    const refused = /refused/i.test(((error.cause as Error | undefined)?.message) ?? "");
    if (!loopbackHosts.has(url.hostname) || !refused) throw error;
    const binary = findBinary();
    if (!binary) {
      throw new UnavailableError(
        `nothing answers at ${displayUrl(natsUrl)} and nats-server was not found; ${natsInstallHint}`,
      );
    }
    const storeFolder = join(dataFolder, "nats");
    await mkdir(storeFolder, { recursive: true });
    logger.info("no NATS answers; starting a private nats-server", {
      url: displayUrl(natsUrl),
      binary,
      store: storeFolder,
    });
    const server = await startNatsServer({
      binary,
      storeFolder,
      host: url.hostname.replace(/^\[|\]$/g, ""),
      port: Number(url.port || 4222),
      detached: true,
    });
    // Detached, it would outlive a launcher that dies on an error path: kill it on exit then.
    const killOnExit = () => process.kill(server.pid, "SIGTERM");
    process.once("exit", killOnExit);
    const stop = async () => {
      await server.stop();
      process.removeListener("exit", killOnExit);
    };
    try {
      return {
        nc: await connectNats(server.url, { name }),
        url: server.url,
        privateServer: { ...server, stop, storeFolder },
      };
    } catch (connectError) {
      await stop();
      throw connectError;
    }
  }
}
