/**
 * The nats-server config veil's broker runs with: the trusted account VEIL (servers,
 * storage nodes, operators; JetStream), the account CLIENTS (users' machines; no
 * JetStream), what each exports to the other, and every user's permissions.
 *
 * Every user sits inside an `accounts` block and there is no top-level `authorization`
 * block: Debian's nats-server 2.9.10 has CVE-2023-47090, where mixing the two lets anonymous
 * connections in with full rights. Anonymous connections are mapped to the client user
 * with `no_auth_user` (unless the operator requires the client password), so they get the
 * client's rights and nothing more.
 */
import { chmod, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { clientUser, type PublicIdentities, type TrustedKind } from "./identities.ts";
import { limits, ValidationError } from "../../events/mod.ts";

/**
 * What each identity may publish and subscribe to: exactly what its process needs. The
 * broker enforces these; they are the first of veil's defences, not the only one (requests
 * that carry secrets are sealed as well, and storage nodes check tickets).
 *
 * Users' machines live in their own account, CLIENTS, which sees nothing of the trusted
 * account but what it exports: the commands (`veil.cmd.>`), ticketed chunk puts and gets,
 * and the replies to them. In their own account clients may still only publish those
 * requests and read their replies, so one client cannot read another's requests.
 */
export interface Permissions {
  readonly publish: { readonly allow: readonly string[]; readonly deny?: readonly string[] };
  readonly subscribe: { readonly allow: readonly string[]; readonly deny?: readonly string[] };
  /** May answer the requests it receives (publish to their reply subjects) beyond `publish`. */
  readonly allowResponses?: boolean;
}

/** What the trusted account offers users' machines: the commands, and ticketed chunk puts and gets. */
export const commandServices = ["veil.cmd.>"] as const;
export const storageServices = ["veil.store.*.put", "veil.store.*.get"] as const;
export const clientServices = [...commandServices, ...storageServices] as const;
/** What the trusted account streams to users' machines: their notifications and peers' requests. */
export const clientStreams = ["veil.note.>"] as const;
/** What users' machines offer the trusted account: their peers' answers (previews), checked by servers. */
export const peerServices = ["veil.peer.>"] as const;

/** Never for anyone: deleting or purging veil's streams and buckets loses what cannot be rebuilt. */
const destructiveJetStream = [
  "$JS.API.STREAM.DELETE.>",
  "$JS.API.STREAM.PURGE.>",
  "$JS.API.STREAM.MSG.DELETE.>",
];

/** What an operator's read-only tools use: stream and consumer info, message reads, ephemeral consumers. */
const jetStreamReads = [
  "$JS.API.INFO",
  "$JS.API.STREAM.NAMES",
  "$JS.API.STREAM.LIST",
  "$JS.API.STREAM.INFO.*",
  "$JS.API.STREAM.MSG.GET.*",
  "$JS.API.DIRECT.GET.>",
  "$JS.API.CONSUMER.CREATE.>",
  "$JS.API.CONSUMER.INFO.>",
  "$JS.API.CONSUMER.DELETE.>",
  "$JS.API.CONSUMER.MSG.NEXT.>",
  "$JS.FC.>",
];

export const trustedPermissions: Readonly<Record<TrustedKind, Permissions>> = {
  // Servers keep the log and the buckets, elect, heartbeat, serve commands, reach storage
  // nodes for repair and collection, and tell peers of notifications. They never speak as
  // a storage node. They answer requests on reply subjects they may publish to (their own
  // account's inboxes, and `_R_.>`, where the broker maps the replies of users' machines),
  // not through `allow_responses`: with it, nats-server 2.9 tracks the reply subject of
  // every message it delivers, JetStream's included, which made reading the log 25 times
  // slower (7k instead of 170k messages a second, measured).
  server: {
    publish: {
      allow: ["veil.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "_INBOX.>", "_R_.>"],
      deny: [...destructiveJetStream, "veil.hb.storage.>"],
    },
    subscribe: { allow: ["veil.>", "_INBOX.>"] },
  },
  // Storage nodes answer on their own subjects, heartbeat as storage, and ask the servers
  // for the cluster's public keys. They never touch the log.
  storage: {
    publish: { allow: ["veil.hb.storage.*", "veil.cmd.cluster.keys"] },
    subscribe: { allow: ["veil.store.*.*", "_INBOX.>"] },
    allowResponses: true,
  },
  // Operators read: the log, the snapshots, the cluster's view of its nodes.
  operator: {
    publish: { allow: [...jetStreamReads, "veil.cmd.cluster.nodes", "veil.cmd.cluster.keys"] },
    subscribe: { allow: ["_INBOX.>"] },
  },
};

export const clientPermissions: Permissions = {
  publish: { allow: [...clientServices] },
  subscribe: { allow: ["_INBOX.>", ...clientStreams, ...peerServices] },
  allowResponses: true,
};

export const trustedAccount = "VEIL";
export const clientsAccount = "CLIENTS";

export interface BrokerConfigOptions {
  readonly identities: PublicIdentities;
  /** Where JetStream keeps its files. */
  readonly storeFolder: string;
  /** Where it listens; the launcher passes the port on the command line instead when it lets the server pick one. */
  readonly host?: string;
  readonly port?: number;
  /** Refuse anonymous connections: users' machines must present the client password. */
  readonly requireClientCredential?: boolean;
  /** One node of a clustered broker: its name and its routes to the others. */
  readonly cluster?: BrokerClusterNode;
  /** Serve TLS to clients (and, with a CA, on routes): the broker's certificate and key. */
  readonly tls?: BrokerTlsFiles;
}

/** What makes a nats-server one node of veil's broker cluster. */
export interface BrokerClusterNode {
  /** This node's name, unique in the cluster (JetStream's replicas are placed by it). */
  readonly serverName: string;
  /** Where it listens for routes from the other nodes (host:port). */
  readonly listen: string;
  /** The other nodes' route addresses (host:port). */
  readonly routes: readonly string[];
  /**
   * What routes authenticate with: a route is a full member of the broker and sees every
   * account, so an open route port would let anyone past every permission.
   */
  readonly routePassword: string;
}

/** The name of the cluster veil's broker nodes form. */
export const brokerClusterName = "veil";
const routeUser = "route";

function clusterLines(node: BrokerClusterNode, tls: BrokerTlsFiles | undefined): string[] {
  if (tls && !tls.caFile) {
    throw new ValidationError("a broker cluster with TLS needs the CA file its routes verify each other with");
  }
  const route = (address: string) => `nats-route://${routeUser}:${encodeURIComponent(node.routePassword)}@${address}`;
  return [
    `server_name: ${quote(node.serverName)}`,
    `cluster {`,
    `  name: ${quote(brokerClusterName)}`,
    `  listen: ${quote(node.listen)}`,
    `  authorization { user: ${quote(routeUser)}, password: ${quote(node.routePassword)} }`,
    `  routes: ${list(node.routes.map(route))}`,
    ...(tls ? routeTlsBlock({ ...tls, caFile: tls.caFile! }).split("\n").map((line) => `  ${line}`) : []),
    `}`,
  ];
}

const quote = (text: string) => JSON.stringify(text);
const list = (items: readonly string[]) => `[${items.map(quote).join(", ")}]`;

function permissionsBlock(permissions: Permissions, indent: string): string {
  const side = (name: string, rules: Permissions["publish"]) =>
    `${indent}  ${name}: { allow: ${list(rules.allow)}${rules.deny ? `, deny: ${list(rules.deny)}` : ""} }`;
  return [
    `permissions: {`,
    side("publish", permissions.publish),
    side("subscribe", permissions.subscribe),
    ...(permissions.allowResponses ? [`${indent}  allow_responses: true`] : []),
    `${indent}}`,
  ].join("\n");
}

export function brokerConfig(options: BrokerConfigOptions): string {
  const { identities } = options;
  const nkeyUser = (kind: "server" | "storage" | "operator") =>
    `      { nkey: ${quote(identities[kind])}, ${permissionsBlock(trustedPermissions[kind], "        ")} }`;
  const lines = [
    "# veil's broker: generated by veil; `veil broker config` prints it again.",
    ...(options.host ? [`host: ${quote(options.host)}`] : []),
    ...(options.port ? [`port: ${options.port}`] : []),
    ...(options.tls ? [clientTlsBlock(options.tls)] : []),
    ...(options.cluster ? clusterLines(options.cluster, options.tls) : []),
    `max_payload: ${limits.brokerPayloadBytesMax}`,
    // A peer (client or route) on a host cut off sends no reset: find it gone in seconds.
    `ping_interval: "${limits.brokerPingIntervalMs / 1_000}s"`,
    `ping_max: ${limits.brokerPingsOutMax}`,
    `jetstream {`,
    `  store_dir: ${quote(options.storeFolder)}`,
    `  max_file_store: ${limits.brokerFileStoreBytesMax}`,
    `  max_memory_store: ${limits.brokerMemoryStoreBytesMax}`,
    `}`,
    `accounts {`,
    `  ${trustedAccount} {`,
    `    jetstream: enabled`,
    `    users: [`,
    nkeyUser("server"),
    nkeyUser("storage"),
    nkeyUser("operator"),
    `    ]`,
    `    exports: [`,
    ...clientServices.map((subject) => `      { service: ${quote(subject)} }`),
    ...clientStreams.map((subject) => `      { stream: ${quote(subject)} }`),
    `    ]`,
    `    imports: [`,
    ...peerServices.map((subject) =>
      `      { service: { account: ${clientsAccount}, subject: ${quote(subject)} }, share: true }`
    ),
    `    ]`,
    `  }`,
    `  ${clientsAccount} {`,
    `    users: [`,
    `      { user: ${quote(clientUser)}, password: ${quote(identities.clientPassword)}, ${
      permissionsBlock(clientPermissions, "        ")
    } }`,
    `    ]`,
    `    exports: [`,
    // A stream of answers, not the broker's default single one: anyone in this account can
    // listen on a peer's subject, so the server reads answers until one is signed by the peer.
    ...peerServices.map((subject) => `      { service: ${quote(subject)}, response_type: stream }`),
    `    ]`,
    `    imports: [`,
    // `share: true` puts the caller's account, user and address into a Nats-Request-Info
    // header the broker writes itself, so servers know a command came from a user's machine.
    // Chunk puts and gets go without it: a storage node trusts only the ticket, never the
    // caller, so it need not learn users' addresses, nor parse a header on every put.
    ...commandServices.map((subject) =>
      `      { service: { account: ${trustedAccount}, subject: ${quote(subject)} }, share: true }`
    ),
    ...storageServices.map((subject) =>
      `      { service: { account: ${trustedAccount}, subject: ${quote(subject)} } }`
    ),
    ...clientStreams.map((subject) => `      { stream: { account: ${trustedAccount}, subject: ${quote(subject)} } }`),
    `    ]`,
    `  }`,
    `}`,
    ...(options.requireClientCredential ? [] : [`no_auth_user: ${quote(clientUser)}`]),
  ];
  return lines.join("\n") + "\n";
}

export const brokerConfigFileName = "nats-server.conf";

/** One config per node of a broker cluster whose nodes' route addresses (host:port) are given, in order. */
export function brokerClusterConfigs(
  options: Omit<BrokerConfigOptions, "cluster"> & {
    readonly routeAddresses: readonly string[];
    readonly routePassword: string;
    /** Each node's JetStream folder; by default the store folder is shared by name (`<store>/<node>`). */
    readonly storeFolderOf?: (serverName: string) => string;
    /** Each node's client port, where nodes share one host. */
    readonly portOf?: (index: number) => number | undefined;
  },
): { serverName: string; routeAddress: string; text: string }[] {
  const { routeAddresses, routePassword } = options;
  return routeAddresses.map((routeAddress, index) => {
    const serverName = brokerNodeName(index);
    const port = options.portOf?.(index) ?? options.port;
    const text = brokerConfig({
      ...options,
      ...(port ? { port } : {}),
      storeFolder: options.storeFolderOf?.(serverName) ?? join(options.storeFolder, serverName),
      cluster: {
        serverName,
        listen: routeAddress,
        routes: routeAddresses.filter((_, other) => other !== index),
        routePassword,
      },
    });
    return { serverName, routeAddress, text };
  });
}

/** The name of the broker cluster's node at `index` (from 0): broker-1, broker-2, ... */
export const brokerNodeName = (index: number) => `broker-${index + 1}`;

/**
 * Writes a config for the data folder's broker (mode 0600: it names the client password)
 * and returns where it is. Each node of a clustered broker has its own file.
 */
export async function writeBrokerConfig(dataFolder: string, text: string, serverName?: string): Promise<string> {
  const path = join(dataFolder, "broker", serverName ? `nats-server-${serverName}.conf` : brokerConfigFileName);
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
  return path;
}

// ---- TLS, in nats-server 2.9's syntax (checked against Debian's 2.9.10)

export interface BrokerTlsFiles {
  /** The broker's certificate (PEM), its chain after it if any. */
  readonly certFile: string;
  readonly keyFile: string;
  /** The CA that signed it: what routes verify each other against. */
  readonly caFile?: string;
}

/**
 * How long a client has to finish its TLS handshake. 2.9's default is 2 s as well; it is
 * written out so that a slow client's refusal reads from the config, not from the source.
 */
export const tlsHandshakeTimeoutMs = 2_000;

/**
 * The top-level `tls {}` block: clients must speak TLS (nats-server then refuses a plain
 * one) and see this certificate. Clients present none: they prove who they are with
 * their nkey or password, inside the encrypted connection. A `caFile` here only lets the
 * server check client certificates, which it does not ask for, so it is left out.
 */
export function clientTlsBlock(files: BrokerTlsFiles, options: { handshakeTimeoutMs?: number } = {}): string {
  const timeoutMs = options.handshakeTimeoutMs ?? tlsHandshakeTimeoutMs;
  if (!(timeoutMs > 0)) throw new ValidationError(`the TLS handshake timeout must be positive, not ${timeoutMs} ms`);
  return tlsBlock([...keyPairLines(files), `timeout: ${timeoutMs / 1_000}`]);
}

/**
 * The `tls {}` block inside `cluster {}`. Each node both dials and accepts routes with
 * the same certificate, and checks the other's against the CA: a route sees every
 * account, so a node that cannot show a certificate from veil's CA must not become one.
 * (nats-server forces this verification for routes anyway; `verify: true` says so.)
 */
export function routeTlsBlock(files: BrokerTlsFiles & { readonly caFile: string }): string {
  return tlsBlock([
    ...keyPairLines(files),
    `ca_file: ${quotePath(files.caFile)}`,
    "verify: true",
    `timeout: ${tlsHandshakeTimeoutMs / 1_000}`,
  ]);
}

/**
 * The `tls {}` block inside `websocket {}`, which nats-server refuses to start without
 * (short of `no_tls`). A browser checks the certificate against its own roots, so a
 * private CA must be trusted by the browser too. The handshake's bound is the websocket
 * block's `handshake_timeout`: 2.9 ignores a `timeout` here.
 */
export function websocketTlsBlock(files: BrokerTlsFiles): string {
  return tlsBlock(keyPairLines(files));
}

function keyPairLines(files: BrokerTlsFiles): string[] {
  return [`cert_file: ${quotePath(files.certFile)}`, `key_file: ${quotePath(files.keyFile)}`];
}

function tlsBlock(lines: readonly string[]): string {
  return ["tls {", ...lines.map((line) => `  ${line}`), "}"].join("\n");
}

/**
 * A double-quoted config string. JSON's escapes for `"` and `\` are the config's too,
 * but JSON writes control characters as `\u00XX`, which nats-server's parser rejects:
 * no sane path has one, so one is refused here rather than there.
 */
function quotePath(path: string): string {
  // deno-lint-ignore no-control-regex
  if (path.length === 0 || /[\u0000-\u001f\u007f]/.test(path)) {
    throw new ValidationError(`${JSON.stringify(path)} cannot be a file in the broker's config`);
  }
  return JSON.stringify(path);
}
