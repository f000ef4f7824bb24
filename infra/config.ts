/** Configuration from the environment, validated once at start with clear messages. */
import process from "node:process";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parseBytes } from "./cli/format.ts";
import { limits, ValidationError } from "../events/mod.ts";
import { defaultHeartbeatTimeouts, type HeartbeatTimeouts } from "../projections/mod.ts";
import { type LogLevel, logLevels } from "./log.ts";
import { brokerUrls } from "./nats/connection.ts";

export interface Config {
  /** NATS_URL: where the broker is (default nats://127.0.0.1:4290, veil's own port), or a comma-separated list of a cluster's brokers. */
  readonly natsUrl: string;
  /**
   * VEIL_CREDS: a file of broker identities (server, storage, operator, client), all or
   * only some; else `<data>/broker/identities.json`, which `veil up` generates.
   */
  readonly credsPath?: string;
  /** VEIL_TLS_CA: speak TLS to the broker, trusting only this CA's certificate file (`veil up --tls` makes one). */
  readonly tlsCaFile?: string;
  /** VEIL_REQUIRE_CLIENT_CREDENTIAL=1: veil's broker refuses anonymous users' machines (they need the client password). */
  readonly requireClientCredential: boolean;
  /** VEIL_DATA: the data folder (private nats-server store, later chunk stores). */
  readonly dataFolder: string;
  /** VEIL_STREAM_REPLICAS: JetStream replicas of veil's streams; unset, 3 on a broker cluster of 3 or more, else 1. */
  readonly streamReplicas?: number;
  /** VEIL_LOG: debug, info, warn, error or silent. */
  readonly logLevel: LogLevel;
  /** VEIL_SERVER_TTL_MS and VEIL_PEER_TTL_MS: silence after which a node counts as gone (storage nodes use the server one). */
  readonly heartbeatTimeouts: HeartbeatTimeouts;
  /** VEIL_CLUSTER_KEY: the cluster key (64 hex digits or base64 of 32 bytes); else `<data>/cluster.key`. */
  readonly clusterKeyText?: string;
  /** VEIL_SESSION_TTL: how long a session lasts (e.g. 30m, 24h, 7d; default 24h). */
  readonly sessionTtlMs: number;
  /** VEIL_SMTP_URL: where the mailer sends (smtp://user:pass@host:port); unset, it writes .eml files under <data>/mail. */
  readonly smtpUrl?: string;
  /** VEIL_MAIL_FROM: the sender of notifications. */
  readonly mailFrom: string;
  /** VEIL_HOME: where the client keeps its sessions (default ~/.config/veil). */
  readonly veilHome: string;
  /** VEIL_REPAIR_GRACE_MS: how long a silent storage node keeps its replicas before they are copied elsewhere. */
  readonly repairGraceMs: number;
  /** VEIL_GC_GRACE_MS: how long a stored chunk no manifest references is kept (it may belong to an upload still running). */
  readonly gcGraceMs: number;
  /** VEIL_GC_INTERVAL_MS: how often the leader looks for unreferenced chunks. */
  readonly gcIntervalMs: number;
  /** VEIL_QUOTA: what one user's files and uploads may take on the storage nodes, every replica counted (e.g. 20GB). */
  readonly userQuotaBytes: number;
}

/**
 * veil's broker listens on its own port by default, so a nats-server that already runs on
 * NATS's usual 4222 (open to anyone, as installed) is neither used nor in the way.
 */
export const defaultNatsUrl = "nats://127.0.0.1:4290";

const durationUnitsMs: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

function sessionTtl(text: string | undefined): number {
  if (text === undefined || text === "") return limits.sessionTtlDefaultMs;
  const match = /^(\d+)(s|m|h|d)$/.exec(text);
  const value = match ? Number(match[1]) * durationUnitsMs[match[2]!]! : NaN;
  if (!(value >= 60_000 && value <= limits.sessionTtlMaxMs)) {
    throw new ValidationError(`VEIL_SESSION_TTL must be a duration from 1m to 90d such as 30m, 24h or 7d, got ${text}`);
  }
  return value;
}

function milliseconds(env: Readonly<Record<string, string | undefined>>, name: string, fallback: number): number {
  const text = env[name];
  if (text === undefined || text === "") return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 100 || value > 3_600_000) {
    throw new ValidationError(`${name} must be milliseconds from 100 to 3600000, got ${text}`);
  }
  return value;
}

function flag(env: Readonly<Record<string, string | undefined>>, name: string): boolean {
  const text = env[name] ?? "";
  if (["", "0", "false", "no"].includes(text)) return false;
  if (["1", "true", "yes"].includes(text)) return true;
  throw new ValidationError(`${name} must be 1 or 0 (true or false), got ${text}`);
}

export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env): Config {
  const natsUrl = env.NATS_URL || defaultNatsUrl;
  brokerUrls(natsUrl); // checked once here, so a bad entry is a clear error at start
  const replicas = env.VEIL_STREAM_REPLICAS ? Number(env.VEIL_STREAM_REPLICAS) : undefined;
  if (replicas !== undefined && (!Number.isInteger(replicas) || replicas < 1 || replicas > limits.streamReplicasMax)) {
    throw new ValidationError(
      `VEIL_STREAM_REPLICAS must be an integer from 1 to ${limits.streamReplicasMax}, got ${env.VEIL_STREAM_REPLICAS}`,
    );
  }
  const logLevel = (env.VEIL_LOG ?? "info") as LogLevel;
  if (!logLevels.includes(logLevel)) {
    throw new ValidationError(`VEIL_LOG must be one of ${logLevels.join(", ")}, got ${env.VEIL_LOG}`);
  }
  const serverTimeoutMs = milliseconds(env, "VEIL_SERVER_TTL_MS", defaultHeartbeatTimeouts.server);
  const heartbeatTimeouts = {
    server: serverTimeoutMs,
    storage: serverTimeoutMs,
    peer: milliseconds(env, "VEIL_PEER_TTL_MS", defaultHeartbeatTimeouts.peer),
  };
  if (env.VEIL_SMTP_URL && !/^smtps?:\/\//.test(env.VEIL_SMTP_URL)) {
    throw new ValidationError("VEIL_SMTP_URL must be an smtp:// or smtps:// URL");
  }
  return {
    natsUrl,
    dataFolder: resolve(env.VEIL_DATA || ".veil"),
    ...(replicas !== undefined ? { streamReplicas: replicas } : {}),
    logLevel,
    heartbeatTimeouts,
    ...(env.VEIL_CLUSTER_KEY ? { clusterKeyText: env.VEIL_CLUSTER_KEY } : {}),
    ...(env.VEIL_CREDS ? { credsPath: resolve(env.VEIL_CREDS) } : {}),
    ...(env.VEIL_TLS_CA ? { tlsCaFile: resolve(env.VEIL_TLS_CA) } : {}),
    requireClientCredential: flag(env, "VEIL_REQUIRE_CLIENT_CREDENTIAL"),
    sessionTtlMs: sessionTtl(env.VEIL_SESSION_TTL),
    ...(env.VEIL_SMTP_URL ? { smtpUrl: env.VEIL_SMTP_URL } : {}),
    mailFrom: env.VEIL_MAIL_FROM || "veil <veil@localhost>",
    veilHome: resolve(env.VEIL_HOME || join(homedir(), ".config", "veil")),
    repairGraceMs: milliseconds(env, "VEIL_REPAIR_GRACE_MS", limits.repairGraceMs),
    gcGraceMs: milliseconds(env, "VEIL_GC_GRACE_MS", limits.gcGraceMs),
    gcIntervalMs: milliseconds(env, "VEIL_GC_INTERVAL_MS", limits.gcIntervalMs),
    userQuotaBytes: env.VEIL_QUOTA ? parseBytes(env.VEIL_QUOTA, "VEIL_QUOTA", 2 ** 53 - 1) : limits.userQuotaBytes,
  };
}
