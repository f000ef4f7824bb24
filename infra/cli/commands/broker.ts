/**
 * `veil broker`: the broker's config and identities, for operators who run nats-server
 * themselves or spread veil's processes over several machines.
 */
import process from "node:process";
import { join, resolve } from "node:path";
import { makeTestCertificates } from "../../nats/certs.ts";
import { tlsFolder } from "../../launcher/broker.ts";
import { type Command, Option } from "commander";
import { limits, ValidationError } from "../../../events/mod.ts";
import { loadConfig } from "../../config.ts";
import { brokerClusterConfigs, brokerConfig } from "../../nats/broker-config.ts";
import {
  identitiesPath,
  loadOrCreateIdentities,
  loadOrCreateRoutePassword,
  publicIdentities,
  trustedKinds,
} from "../../nats/identities.ts";

const print = (text: string) => process.stdout.write(text);

interface BrokerConfigFlags {
  store?: string;
  host?: string;
  port?: string;
  requireClientCredential?: boolean;
  cluster?: string;
  node?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

function tlsFiles(options: BrokerConfigFlags): { tls?: { certFile: string; keyFile: string; caFile?: string } } {
  if (!options.tlsCert && !options.tlsKey && !options.tlsCa) return {};
  if (!options.tlsCert || !options.tlsKey) throw new ValidationError("--tls-cert and --tls-key go together");
  return {
    tls: {
      certFile: resolve(options.tlsCert),
      keyFile: resolve(options.tlsKey),
      ...(options.tlsCa ? { caFile: resolve(options.tlsCa) } : {}),
    },
  };
}

function portNumber(text: string, what: string): number {
  const port = Number(text);
  if (!(Number.isInteger(port) && port >= 1 && port <= 65_535)) {
    throw new ValidationError(`${what} must be a port number from 1 to 65535, got ${text}`);
  }
  return port;
}

/** A route address as nats-server takes it: host:port, the host a name or an IPv4 or bracketed IPv6 address. */
function routeAddress(text: string): string {
  const match = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d+)$/.exec(text);
  if (!match) throw new ValidationError(`--cluster entry ${JSON.stringify(text)} is not HOST:PORT`);
  portNumber(match[2]!, `the port of --cluster entry ${text}`);
  return text;
}

export function registerBroker(program: Command): void {
  const broker = program
    .command("broker")
    .description("the broker's generated config and identities (for running nats-server yourself)");

  broker
    .command("config")
    .description("print the nats-server config veil's broker runs with (accounts, identities, permissions)")
    .option("--store <folder>", "where JetStream keeps its files (default <data>/nats)")
    .option("--host <host>", "the address to listen on (default: nats-server's own, every interface)")
    .option("--port <port>", "the port to listen on (default: nats-server's own, 4222)")
    .option("--require-client-credential", "refuse anonymous users' machines: they need the client password")
    .option(
      "--cluster <routes>",
      "print one config per node of a broker cluster: every node's route address, HOST:PORT,HOST:PORT,... in order",
    )
    .option("--node <n>", "with --cluster: print only node n's config (1 is the first route address)")
    .option("--tls-cert <file>", "serve TLS with this certificate (PEM); with --tls-key")
    .option("--tls-key <file>", "the certificate's private key (PEM)")
    .option("--tls-ca <file>", "the CA routes verify each other with (needed with --cluster and TLS)")
    .addHelpText(
      "after",
      "\nThe identities come from <data>/broker/identities.json (made on first use, mode 0600); a cluster's\n" +
        "route password from <data>/broker/route-password. Keep the output private: it names both.\n" +
        "Run:  veil broker config > veil.conf && nats-server -c veil.conf\n" +
        "Cluster of three hosts, on each host i (1, 2, 3):\n" +
        "      veil broker config --cluster 10.0.0.1:6222,10.0.0.2:6222,10.0.0.3:6222 --node i > veil.conf\n" +
        "      nats-server -c veil.conf",
    )
    .action(async (options: BrokerConfigFlags) => {
      const config = loadConfig();
      const port = options.port === undefined ? undefined : portNumber(options.port, "--port");
      const identities = await loadOrCreateIdentities(config.dataFolder);
      const common = {
        identities: publicIdentities(identities),
        storeFolder: options.store ?? join(config.dataFolder, "nats"),
        ...(options.host ? { host: options.host } : {}),
        ...(port ? { port } : {}),
        requireClientCredential: options.requireClientCredential ?? config.requireClientCredential,
        ...tlsFiles(options),
      };
      if (options.cluster === undefined) {
        if (options.node !== undefined) throw new ValidationError("--node needs --cluster");
        return void print(brokerConfig(common));
      }
      const routeAddresses = options.cluster.split(",").map((address) => routeAddress(address.trim()));
      if (routeAddresses.length < 3 || routeAddresses.length > limits.brokerClusterNodesMax) {
        throw new ValidationError(
          `--cluster names ${routeAddresses.length} nodes; a broker cluster has 3 to ${limits.brokerClusterNodesMax}`,
        );
      }
      const nodes = brokerClusterConfigs({
        ...common,
        // Each node is on its own host: its JetStream folder is the same path there.
        storeFolderOf: () => common.storeFolder,
        routeAddresses,
        routePassword: await loadOrCreateRoutePassword(config.dataFolder),
      });
      const only = options.node === undefined ? undefined : Number(options.node);
      if (only !== undefined && !(Number.isInteger(only) && only >= 1 && only <= nodes.length)) {
        throw new ValidationError(`--node must be a number from 1 to ${nodes.length}, got ${options.node}`);
      }
      nodes.forEach((node, index) => {
        if (only !== undefined && only !== index + 1) return;
        if (only === undefined) {
          print(`# ---- node ${index + 1} of ${nodes.length}: ${node.serverName}, routes at ${node.routeAddress}\n`);
        }
        print(node.text);
      });
    });

  broker
    .command("certs")
    .description("make a private CA and a broker certificate signed by it, for a test deployment with TLS")
    .option("--hosts <hosts>", "names and addresses the broker is reached at, comma-separated (loopback always)", "")
    .option("--force", "replace existing certificates (every client that trusts the old CA must get the new one)")
    .addHelpText(
      "after",
      "\nWrites <data>/broker/tls/{ca.pem,ca-key.pem,server.pem,server-key.pem} (keys mode 0600).\n" +
        "`veil up --tls` uses them; clients trust the broker with VEIL_TLS_CA=<data>/broker/tls/ca.pem.",
    )
    .action(async (options: { hosts: string; force?: boolean }) => {
      const config = loadConfig();
      const hosts = options.hosts.split(",").map((host) => host.trim()).filter(Boolean);
      const files = await makeTestCertificates({ folder: tlsFolder(config.dataFolder), hosts, force: options.force });
      print(`CA          ${files.caFile}   (give it to clients: VEIL_TLS_CA)\n`);
      print(`certificate ${files.certFile}\nkey         ${files.keyFile}\n`);
    });

  broker
    .command("identities")
    .description("print broker identities as a file for VEIL_CREDS on another machine (keep it private)")
    .addOption(
      new Option("--only <kind...>", "only these identities (least privilege: a storage machine needs only storage)")
        .choices([...trustedKinds, "client"]),
    )
    .action(async (options: { only?: string[] }) => {
      const config = loadConfig();
      const identities = await loadOrCreateIdentities(config.dataFolder);
      const kinds = options.only ?? Object.keys(identities);
      const chosen = Object.fromEntries(
        Object.entries(identities).filter(([kind]) => kinds.includes(kind)),
      );
      print(JSON.stringify(chosen, null, 2) + "\n");
      process.stderr.write(`from ${identitiesPath(config.dataFolder)}; store the copy with mode 0600\n`);
    });
}
