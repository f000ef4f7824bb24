/**
 * veil's own broker: one nats-server, or a cluster of them on one machine, each started with
 * the config generated from the data folder's identities (accounts, permissions, JetStream,
 * and for a cluster, authenticated routes). The launcher runs it when nothing answers at
 * NATS_URL; the test harness and the benchmarks run exactly the same thing on free ports.
 */
import { mkdir } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { brokerClusterConfigs, brokerConfig, type BrokerTlsFiles, writeBrokerConfig } from "./broker-config.ts";
import { type Identities, loadOrCreateIdentities, loadOrCreateRoutePassword, publicIdentities } from "./identities.ts";
import { type NatsServerProcess, startNatsServer } from "./server-process.ts";
import { limits, ValidationError } from "../../events/mod.ts";

export interface PrivateBrokerNode extends NatsServerProcess {
  /** The node's name in a cluster (undefined for a single broker). */
  readonly serverName?: string;
  readonly configFile: string;
  readonly storeFolder: string;
}

export interface PrivateBroker {
  /** Every node's client URL, comma-separated: what NATS_URL is for veil's processes. */
  readonly url: string;
  /** The nodes as they run now; `restart` replaces an entry. */
  readonly nodes: readonly PrivateBrokerNode[];
  readonly identities: Required<Identities>;
  /** Starts node `index` again with its config and store (after it was stopped or killed). */
  restart(index: number): Promise<PrivateBrokerNode>;
  /** Stops every node still running. */
  stop(): Promise<void>;
}

export interface PrivateBrokerOptions {
  /** Where the identities and the generated configs live (`<data>/broker/`). */
  readonly dataFolder: string;
  /** JetStream's folder; a cluster's nodes each get `<store>/<node name>`. */
  readonly storeFolder: string;
  readonly host: string;
  /** How many nodes (1: a single broker; 3 or more: a cluster). */
  readonly nodes: number;
  /** Each node's client port; free ones when not given. */
  readonly ports?: readonly number[];
  /** Each cluster node's route port; free ones when not given. */
  readonly routePorts?: readonly number[];
  readonly requireClientCredential?: boolean;
  /** Serve TLS to clients and on routes with these files (the CA is what routes verify each other with). */
  readonly tls?: BrokerTlsFiles;
  readonly binary?: string;
  /** In their own process group (the launcher: a Ctrl-C reaches only it, and it stops them last). */
  readonly detached?: boolean;
}

export async function startPrivateBroker(options: PrivateBrokerOptions): Promise<PrivateBroker> {
  const { dataFolder, storeFolder, host, nodes: count } = options;
  if (!Number.isInteger(count) || count < 1 || count === 2 || count > limits.brokerClusterNodesMax) {
    throw new ValidationError(
      `a broker is 1 node or a cluster of 3 to ${limits.brokerClusterNodesMax} (2 cannot elect a stream leader when one is down), got ${count}`,
    );
  }
  const identities = await loadOrCreateIdentities(dataFolder);
  const common = {
    identities: publicIdentities(identities),
    ...(options.requireClientCredential ? { requireClientCredential: true } : {}),
    ...(options.tls ? { tls: options.tls } : {}),
  };
  const configs = count === 1
    ? [{ serverName: undefined, text: brokerConfig({ ...common, storeFolder }), storeFolder }]
    : await clusterConfigs(options, common);
  const started: PrivateBrokerNode[] = [];
  const startNode = async (index: number): Promise<PrivateBrokerNode> => {
    const config = configs[index]!;
    await mkdir(config.storeFolder, { recursive: true });
    const configFile = await writeBrokerConfig(dataFolder, config.text, config.serverName);
    const server = await startNatsServer({
      binary: options.binary,
      configFile,
      storeFolder: config.storeFolder,
      host,
      port: options.ports?.[index] ?? started[index]?.port,
      detached: options.detached ?? false,
    });
    return {
      ...server,
      configFile,
      storeFolder: config.storeFolder,
      ...(config.serverName ? { serverName: config.serverName } : {}),
    };
  };
  try {
    // One after another: each needs its port before the next can list it.
    for (let index = 0; index < count; index++) started.push(await startNode(index));
  } catch (error) {
    await Promise.all(started.map((node) => node.stop()));
    throw error;
  }
  return {
    url: started.map((node) => node.url).join(","),
    get nodes() {
      return started;
    },
    identities,
    restart: async (index) => (started[index] = await startNode(index)),
    stop: async () => void (await Promise.all(started.map((node) => node.stop()))),
  };
}

async function clusterConfigs(
  options: PrivateBrokerOptions,
  common: Omit<Parameters<typeof brokerConfig>[0], "storeFolder">,
) {
  const routePorts = options.routePorts ?? (await freePorts(options.nodes, options.host));
  const routeAddresses = routePorts.map((port) => `${options.host}:${port}`);
  // Cluster nodes must know each other's client ports only through the routes, but each
  // node's own must be fixed in its config for a restart to come back where it was.
  const ports = options.ports ?? (await freePorts(options.nodes, options.host));
  const routePassword = await loadOrCreateRoutePassword(options.dataFolder);
  return brokerClusterConfigs({
    ...common,
    storeFolder: options.storeFolder,
    routeAddresses,
    routePassword,
    portOf: (index) => ports[index],
  }).map((node) => ({ ...node, storeFolder: join(options.storeFolder, node.serverName) }));
}

/** Ports nothing listens on now, chosen by the kernel (a port is taken again only after it is closed). */
async function freePorts(count: number, host: string): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () =>
      new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
        const server = createServer();
        server.once("error", reject);
        server.listen(0, host, () => resolve(server));
      })),
  );
  const ports = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}
