/**
 * The effects actors need, declared here on the actor side and implemented in infra/ (NATS,
 * disk, system clock) and by the simulator (in memory, seeded, simulated time). Nothing in
 * actors/ reaches the world any other way, which is what makes a run replayable from a seed.
 */
import type { EventDecodeError, VeilEvent } from "../events/mod.ts";

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/**
 * Timers, shaped as XState's own clock: the system's in production, the simulator's
 * (simulated time, advanced by the test) in simulation. Actor-side code never calls the
 * global setTimeout.
 */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Cryptographically strong random bytes (seeded in simulation and known-answer tests). */
export interface RandomSource {
  bytes(length: number): Uint8Array;
}

export interface IdSource {
  /** A fresh unique id (a UUID in production, a seeded sequence in simulation). */
  next(): string;
}

export type LogFields = Readonly<Record<string, string | number | boolean | undefined>>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

/** One entry of the log: a decoded event, or the typed reason it could not be decoded. */
export type LogRecord =
  & { readonly seq: number; readonly subject: string; readonly storedAt: number }
  & ({ readonly ok: true; readonly event: VeilEvent } | { readonly ok: false; readonly error: EventDecodeError });

export interface AppendOptions {
  /**
   * The aggregate's last sequence the decision was made against (0: the aggregate must not
   * exist yet). When the log has moved on, the append fails with a ConcurrencyError.
   */
  readonly expectedSubjectSeq?: number;
}

export interface ReadOptions {
  /** Only this subject (an aggregate) or subject pattern. */
  readonly subject?: string;
  /** First stream sequence to read (default 1). */
  readonly fromSeq?: number;
  /** First stored time to read, epoch ms (instead of fromSeq). */
  readonly since?: number;
}

export interface ReplayOptions extends ReadOptions {
  /** Stop after this stream sequence. */
  readonly untilSeq?: number;
  /** Stop before the first entry stored after this time, epoch ms. */
  readonly untilTime?: number;
}

export interface EventLog {
  /** Appends events to one aggregate's subject, in order; returns their stream sequences. */
  append(subject: string, events: readonly VeilEvent[], options?: AppendOptions): Promise<number[]>;
  /** Everything one aggregate holds, and its last sequence (0 when empty) for the next append. */
  readAggregate(subject: string): Promise<{ records: LogRecord[]; lastSubjectSeq: number }>;
  /** The last entry of one aggregate, or undefined when it has none. */
  readLast(subject: string): Promise<LogRecord | undefined>;
  /** Entries up to the end of the log as it stands when called; then the iteration ends. */
  replay(options?: ReplayOptions): AsyncIterable<LogRecord>;
  /** Entries from the given point on, live, until the signal aborts. */
  follow(options: ReadOptions & { readonly signal: AbortSignal }): AsyncIterable<LogRecord>;
  /** The last stored sequence (0 when the log is empty). */
  lastSeq(): Promise<number>;
  /** Names this log; it changes when the log is deleted and created anew, so old snapshots are known stale. */
  identity(): Promise<string>;
}

export interface Snapshot {
  /** The identity of the log it was folded from (see EventLog.identity). */
  readonly logIdentity: string;
  /** The last stream sequence folded into `state`. */
  readonly seq: number;
  /** When that entry was stored, epoch ms, so time travel knows whether the snapshot is usable. */
  readonly storedAt: number;
  /** The projection version that wrote it. */
  readonly version: number;
  readonly state: unknown;
}

/** A cache of projection states: losing it costs a rebuild, never correctness. */
export interface SnapshotStore {
  load(name: string): Promise<Snapshot | undefined>;
  save(name: string, snapshot: Snapshot): Promise<void>;
}

/**
 * Who sent a request, as the broker (not the sender) says: users' machines reach the
 * cluster from their own account, and the broker stamps their requests with it. Absent for
 * requests from inside the trusted account (servers, storage nodes, operators).
 */
export interface Caller {
  readonly account: string;
  /** The address the connection came from, when the broker tells it. */
  readonly host?: string;
}

export interface BusMessage {
  readonly subject: string;
  readonly data: unknown;
  /** Set when the request came from outside the trusted account (a user's machine). */
  readonly caller?: Caller;
  /** A request, whose sender waits for an answer (not a message published one way). */
  readonly expectsReply: boolean;
  /** Answers a request; a no-op when the sender expects no reply. */
  respond(data: unknown): void;
}

export interface Subscription {
  unsubscribe(): void;
}

/** Messages between actors (msgpack over NATS in production). */
export interface Bus {
  publish(subject: string, data: unknown): void;
  /** With a queue group, each message goes to one subscriber of the group. */
  subscribe(subject: string, handler: (message: BusMessage) => void, options?: { queue?: string }): Subscription;
  /**
   * With `accept`, replies are read until one is accepted (others are skipped: on a subject
   * more than one may answer, the first is not always the right one); if none is before the
   * timeout, the last one read is returned for the caller to refuse, or a TimeoutError.
   */
  request(subject: string, data: unknown, options: RequestOptions): Promise<unknown>;
}

export interface RequestOptions {
  readonly timeoutMs: number;
  readonly accept?: (reply: unknown) => boolean;
}

/**
 * Ed25519 signatures (RFC 8032), for storage tickets. Deterministic, so every implementation
 * makes the same signature and checks the others': the portable one (actors/crypto) runs
 * anywhere, the platform's native one (infra) is twenty times faster where tickets are hot.
 */
export interface Signatures {
  publicKeyOf(secretKey: Uint8Array): Uint8Array;
  sign(message: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** False for a wrong signature, and for bytes that are not a signature or a key at all. */
  verify(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean;
}

/** CPU-heavy work (crypto, stego) run off the event loop, in parallel. */
export interface WorkOptions {
  readonly urgent?: boolean;
}

export interface WorkerPool {
  readonly size: number;
  /**
   * Runs `operation` in a worker; rejects with the operation's typed error. Urgent work goes
   * ahead of whatever waits for a worker (a returning user's login ahead of a flood's).
   */
  run(operation: string, input: unknown, transfer?: readonly ArrayBuffer[], options?: WorkOptions): Promise<unknown>;
  close(): Promise<void>;
}

export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
}

/** Where notifications go: SMTP, or files when no mail server is configured. */
export interface MailTransport {
  readonly kind: "smtp" | "file";
  send(message: MailMessage): Promise<void>;
}

/**
 * A storage node's content-addressed chunk store: each chunk is named by its SHA-256 (64
 * lowercase hex digits), which the caller has validated and the store checks again.
 */
export interface ChunkStore {
  /** Counts what is held, and clears what interrupted writes left behind. */
  scan(): Promise<{ readonly chunks: number; readonly bytes: number }>;
  /**
   * Stores `bytes` under `hash`, durably before it resolves; `stored` is false when it was
   * already held. Either way the chunk is marked as touched at `atMs`: garbage collection
   * leaves recently touched chunks alone, so an upload that found a chunk already held
   * does not lose it before its manifest is recorded.
   */
  put(hash: string, bytes: Uint8Array, atMs: number): Promise<{ readonly stored: boolean }>;
  /** The chunk, checked against its hash (an IntegrityError when it no longer matches), or undefined. */
  get(hash: string): Promise<Uint8Array | undefined>;
  has(hash: string): Promise<boolean>;
  /** Up to `limit` chunks held, in hash order, after `after` (from the first when absent). */
  list(after: string | undefined, limit: number): Promise<readonly ChunkEntry[]>;
  /**
   * Removes the chunk; resolves with the bytes freed (0 when it was not held, or, given
   * `untouchedSinceMs`, when it was touched since then and is kept).
   */
  delete(hash: string, options?: { readonly untouchedSinceMs?: number }): Promise<number>;
}

export interface ChunkEntry {
  readonly hash: string;
  readonly bytes: number;
  readonly touchedAtMs: number;
}

/**
 * The cluster's shares of grant keys, outside the log (a KV bucket in production). Each is
 * stored sealed with the cluster key; a delete removes the value and its history, so a
 * closed grant's share is gone for good (crypto-shredding).
 */
export interface GrantShareStore {
  put(grant: string, sealed: Uint8Array): Promise<void>;
  get(grant: string): Promise<Uint8Array | undefined>;
  delete(grant: string): Promise<void>;
}

/** One incremental hash: the file passes through it a part at a time. */
export interface IncrementalHash {
  update(bytes: Uint8Array): void;
  digest(): Uint8Array;
}

/**
 * Hashes of whole files (a download's content check, an upload's content hash): the
 * platform's native ones in infra (the pure-JS hash is seven times slower on this much),
 * noble's in the simulator. Both give the same values.
 */
export interface Digests {
  sha256(): IncrementalHash;
  hmacSha256(key: Uint8Array): IncrementalHash;
  readonly chunkHash: ChunkHasher;
}

/**
 * A chunk's name: the SHA-256 of its bytes in hex. Web Crypto's (actors/crypto/digest.ts)
 * where speed matters; the simulator's is synchronous, so no real thread-pool job decides
 * when a simulated step finishes.
 */
export type ChunkHasher = (bytes: Uint8Array) => Promise<string>;

/** Sealing and opening parts, in the crypto actor. */
export interface SealWork {
  seal(key: Uint8Array, objectId: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array>;
  open(key: Uint8Array, sealed: Uint8Array): Promise<{ objectId: Uint8Array; plaintext: Uint8Array }>;
}

export interface EmbedRequest {
  readonly payload: Uint8Array;
  readonly stegoKey: Uint8Array;
  readonly bits: number;
  readonly stealth?: boolean;
  /** The user's cover PNG; without it, a generated cover sized to fit. */
  readonly cover?: Uint8Array;
  readonly coverSeed?: number;
}

/** Hiding parts in covers and finding them again, and images' previews, in the stego actor. */
export interface StegoWork {
  embed(input: EmbedRequest): Promise<{ png: Uint8Array; psnr: number; width: number; height: number }>;
  extract(png: Uint8Array, stegoKey: Uint8Array): Promise<Uint8Array>;
  preview(png: Uint8Array): Promise<Uint8Array>;
}

/** A file to upload, read a part at a time: from disk in infra, from memory in approvals and the simulator. */
export interface FileSource {
  readonly size: number;
  /** Fills `into` from `offset`; resolves to the bytes read (fewer means the file changed). */
  read(into: Uint8Array, offset: number): Promise<number>;
}

/**
 * Where a download goes, written at offsets as parts arrive; `commit` once the whole was
 * checked (a file renamed into place), `discard` if it was not (nothing half-written stays).
 */
export interface FileSink {
  write(bytes: Uint8Array, offset: number): Promise<void>;
  commit(): Promise<void>;
  discard(): Promise<void>;
}
