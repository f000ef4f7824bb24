/**
 * Finding the broker: connect to NATS_URL as a server; when nothing answers there and the
 * URL is on this machine, start a private nats-server with veil's generated config
 * (accounts, identities, permissions; JetStream storing under the data folder) that lives
 * as long as the launcher. Either way, a broker open to anonymous writers is refused.
 */
import { join } from "node:path";
import process from "node:process";
import type { NatsConnection } from "@nats-io/nats-core";
import type { Logger } from "../../actors/ports.ts";
import { limits, UnavailableError } from "../../events/mod.ts";
import { displayUrl } from "../log.ts";
import { brokerUrls, connectNats } from "../nats/connection.ts";
import { certificateFiles, makeTestCertificates, type TestCertificateFiles } from "../nats/certs.ts";
import { exists } from "../files.ts";
import { authenticatorFor, type Identities } from "../nats/identities.ts";
import { refuseOpenBroker } from "../nats/open-broker.ts";
import { findNatsServerBinary, natsInstallHint } from "../nats/server-process.ts";
import { startPrivateBroker } from "../nats/private-broker.ts";

export interface Broker {
  /** Connected as a server. */
  readonly nc: NatsConnection;
  /** The identities this launcher connects its processes with. */
  readonly identities: Identities;
  /** Where the broker is, fit to show (no credentials). */
  readonly url: string;
  /** The nats-server (or cluster of them) this launcher started, if it had to. */
  readonly privateServer?: { readonly url: string; readonly storeFolder: string; stop(): Promise<void> };
  /** The CA this launcher's connections trust, when they speak TLS. */
  readonly tlsCaFile?: string;
}

/** Where `veil up --tls` and `veil broker certs` keep the private CA and the broker's certificate. */
export const tlsFolder = (dataFolder: string) => join(dataFolder, "broker", "tls");

/** The data folder's broker certificates, made (a private CA for a test deployment) when missing. */
export async function brokerCertificates(
  dataFolder: string,
  hosts: readonly string[],
  logger: Logger,
): Promise<TestCertificateFiles> {
  const files = certificateFiles(tlsFolder(dataFolder));
  if (await exists(files.certFile)) return files;
  logger.info("no broker certificate; making a private CA and one signed by it", { folder: tlsFolder(dataFolder) });
  return await makeTestCertificates({ folder: tlsFolder(dataFolder), hosts });
}

const loopbackHosts = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

export async function reachBroker(options: {
  natsUrl: string;
  dataFolder: string;
  name: string;
  logger: Logger;
  /** The data folder's identities (generated on first use), or those VEIL_CREDS names. */
  identities: Identities;
  /** A private broker refuses anonymous connections: users' machines need the client password. */
  requireClientCredential?: boolean;
  /** How many nats-servers a private broker runs as (1, or a cluster of 3 to 5). */
  brokerNodes?: number;
  /** Serve TLS from a private broker, and speak it, with the data folder's certificates. */
  tls?: boolean;
  /** The CA to trust (VEIL_TLS_CA), when not the data folder's. */
  tlsCaFile?: string;
  /** Where to look for nats-server; tests pass one that finds nothing. */
  findBinary?: () => string | undefined;
}): Promise<Broker> {
  const { natsUrl, dataFolder, name, logger, identities, findBinary = findNatsServerBinary } = options;
  const certificates = options.tls
    ? await brokerCertificates(dataFolder, [new URL(brokerUrls(natsUrl)[0]!).hostname.replace(/^\[|\]$/g, "")], logger)
    : undefined;
  const tlsCaFile = options.tlsCaFile ?? certificates?.caFile;
  const asServer = {
    name,
    authenticator: authenticatorFor(identities, "server"),
    identity: "veil's server identity",
    tlsCaFile,
  };
  let nc: NatsConnection;
  try {
    nc = await connectNats(natsUrl, asServer);
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
    const brokerNodes = options.brokerNodes ?? 1;
    const host = url.hostname.replace(/^\[|\]$/g, "");
    const firstPort = Number(url.port || 4222); // NATS's own default when a URL names no port
    const ports = Array.from({ length: brokerNodes }, (_, index) => firstPort + index);
    const storeFolder = join(dataFolder, "nats");
    logger.info(
      brokerNodes === 1
        ? "no NATS answers; starting a private nats-server"
        : `no NATS answers; starting a private cluster of ${brokerNodes} nats-servers`,
      { url: displayUrl(natsUrl), binary, store: storeFolder },
    );
    const broker = await startPrivateBroker({
      binary,
      dataFolder,
      storeFolder,
      host,
      nodes: brokerNodes,
      ports,
      routePorts: ports.map((port) => port + limits.brokerRoutePortOffset),
      detached: true,
      ...(certificates ? { tls: certificates } : {}),
      ...(options.requireClientCredential ? { requireClientCredential: true } : {}),
    });
    // Detached, they would outlive a launcher that dies on an error path: kill them on exit then.
    const killOnExit = () => broker.nodes.forEach((node) => process.kill(node.pid, "SIGTERM"));
    process.once("exit", killOnExit);
    const stop = async () => {
      await broker.stop();
      process.removeListener("exit", killOnExit);
    };
    try {
      const privateNc = await connectNats(broker.url, asServer);
      return {
        nc: privateNc,
        identities,
        url: broker.url,
        privateServer: { url: broker.url, stop, storeFolder },
        ...(tlsCaFile ? { tlsCaFile } : {}),
      };
    } catch (connectError) {
      await stop();
      throw connectError;
    }
  }
  try {
    await refuseOpenBroker(natsUrl, nc, tlsCaFile);
  } catch (error) {
    await nc.close();
    throw error;
  }
  return { nc, identities, url: displayUrl(natsUrl), ...(tlsCaFile ? { tlsCaFile } : {}) };
}
