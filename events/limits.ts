/**
 * Every bound in veil, in one place (TigerBeetle style): a queue, batch, retry or payload
 * without a named limit is a bug. Units come last in each name.
 */
export const limits = {
  /** Largest encoded event. The stream refuses bigger messages too (max_msg_size). */
  eventBytesMax: 512 * 1024,
  /** Event type names are identifiers, not prose. */
  eventTypeLengthMax: 64,
  /** Actor ids ("by") and aggregate ids are short tokens. */
  actorIdLengthMax: 128,
  subjectTokenLengthMax: 128,
  /** Events in one append. */
  appendEventsMax: 64,
  /** Events one aggregate may hold for `readAggregate`; a longer history is read in ranges. */
  aggregateEventsMax: 100_000,
  /** How long a JetStream publish waits for its acknowledgement. */
  appendAckTimeoutMs: 5_000,
  /**
   * How long an append is retried while the broker cannot answer (a stream leader lost with
   * its node takes a few seconds to replace), and the longest pause between tries. Well
   * inside duplicateWindowMs, so every retry is still recognised as one.
   */
  appendRetryWindowMs: 15_000,
  appendRetryDelayMaxMs: 1_000,
  /** A replay's consumer is removed by the server if its reader vanishes for this long. */
  replayConsumerIdleMs: 30_000,
  /** How many messages a consumer asks the server for at once. */
  consumerBatchMessages: 1_024,
  /**
   * A live follow's pull requests last this long, with a heartbeat this often: an ordered
   * consumer that misses two heartbeats is recreated where it stopped. nats.js's defaults
   * (30 s) left a projection stalled for a minute when a pull was lost on a loaded machine.
   */
  followPullExpiresMs: 5_000,
  followHeartbeatMs: 1_000,
  /**
   * How often a projector compares itself with the log's last sequence: behind with no
   * progress over one interval, its follow has stalled and is replaced.
   */
  followCheckIntervalMs: 2_000,
  /**
   * A follow the broker cannot serve (a cluster electing, its node cut off) is retried, with
   * pauses growing to the second bound, for the first; past it the server stops, saying why.
   */
  followRetryWindowMs: 5 * 60 * 1_000,
  followRetryDelayMaxMs: 2_000,
  /** How often a server compares its clock with the broker's stamp on its own last heartbeat. */
  clockCheckIntervalMs: 5_000,
  /** At start, a server measures its clock this often until its first heartbeat is stored, this many times at most. */
  clockSettleDelayMs: 100,
  clockSettleAttempts: 50,
  /** A server whose projections lag the log for longer than this shows as a problem in `veil health`. */
  projectionLagToleranceMs: 5_000,
  /** A snapshot rides in one NATS message, so it shares the broker's default 1 MiB ceiling. */
  snapshotBytesMax: 1024 * 1024,
  /** The projector snapshots its state after this many events (and when it stops). */
  snapshotEveryEvents: 1_000,
  /** Heartbeats and election traffic are kept this long in VEIL_CLUSTER. */
  clusterStreamAgeMs: 24 * 60 * 60 * 1_000,
  /** Retried publishes with the same Nats-Msg-Id within this window are dropped as duplicates. */
  duplicateWindowMs: 2 * 60 * 1_000,
  /** A launcher or CLI gives up connecting to NATS after this long. */
  connectTimeoutMs: 2_000,
  /**
   * Both ends of every broker connection (clients and routes) ping this often and give up after
   * this many unanswered: a broker host cut off sends no reset, and NATS's defaults (2 min, 2)
   * would leave a process talking to it for four minutes before trying another.
   */
  brokerPingIntervalMs: 2_000,
  brokerPingsOutMax: 3,
  /** JetStream replicas of veil's streams (NATS supports up to 5). */
  streamReplicasMax: 5,
  /** Nodes a launcher's broker cluster may have (JetStream places at most 5 replicas). */
  brokerClusterNodesMax: 5,
  /** How long a launcher waits for a just-formed broker cluster's JetStream to take its first stream. */
  jetStreamReadyTimeoutMs: 30_000,
  /** Route ports of a launcher's broker cluster sit this far above its client ports. */
  brokerRoutePortOffset: 2_000,
  /** How much of a starting nats-server's output is kept, and shown if it fails to start. */
  natsStartOutputBytesMax: 64_000,
  natsStartOutputShownBytesMax: 2_000,
  /** A private nats-server must report ready within this long. */
  natsStartTimeoutMs: 10_000,
  /** The broker's largest message (nats-server's default): a chunk put and its ticket fit in one. */
  brokerPayloadBytesMax: 1024 * 1024,
  /** What veil's broker lets JetStream keep on disk and in memory, over all streams and buckets. */
  brokerFileStoreBytesMax: 64 * 1024 * 1024 * 1024,
  brokerMemoryStoreBytesMax: 256 * 1024 * 1024,
  /** Each stream's ceiling: the log of record refuses new events past it (never drops old ones). */
  eventStreamBytesMax: 32 * 1024 * 1024 * 1024,
  clusterStreamBytesMax: 1024 * 1024 * 1024,
  /** The KV buckets' ceilings: a snapshot per projection, a sealed share per open grant. */
  snapshotBucketBytesMax: 256 * 1024 * 1024,
  grantShareBucketBytesMax: 1024 * 1024 * 1024,
  /** A sealed command's time may differ this much from the server's clock; its nonce is remembered this long. */
  commandClockSkewMs: 120_000,
  /** Clients whose shared keys a server keeps, so a busy client costs one key agreement, not one per command. */
  sealingClientsCachedMax: 10_000,
  /** A sealed command may be dated at most this far ahead of the server's clock (clients correct theirs by it). */
  commandFutureSkewMs: 10_000,
  /** Nonces a server remembers at most (its replay window). */
  replayWindowMax: 200_000,
  /** Of those, what one address (or the trusted account) may hold: a flood from one machine fills its share only. */
  replayWindowPerSourceMax: 50_000,
  /** Chunks one `vault.abandon` may hand back (a failed upload takes back what it put, in batches). */
  abandonChunksMax: 256,
  /** How long the open-broker check waits for its probe to be answered. */
  openBrokerProbeTimeoutMs: 1_000,
  /** Graceful shutdown (actors stop, connection drains) must finish within this long. */
  shutdownTimeoutMs: 10_000,
  /** Election: how often the leader says it is alive, and how long followers wait before electing. */
  leaderAliveIntervalMs: 200,
  leaderTimeoutMs: 800,
  /** Election: how long a candidate waits for an ANSWER from a higher node, then for its COORDINATOR. */
  answerTimeoutMs: 200,
  coordinatorTimeoutMs: 1_000,
  /** Membership heartbeats and the time after which a silent node counts as gone, per role. */
  serverHeartbeatIntervalMs: 1_000,
  serverHeartbeatTimeoutMs: 3_000,
  peerHeartbeatTimeoutMs: 10_000,
  /** How long a command may take before the caller gets a TimeoutError. */
  commandTimeoutMs: 2_000,
  /** How far apart veil's clocks may be (servers', storage nodes', users' machines') with every promise kept. */
  clockSkewMaxMs: 2_000,
  /**
   * How long after its GrantIssued a grant without its share is taken for one whose issue
   * crashed (and closed by the sweep): longer than any grant.issue can take.
   */
  grantIssueGraceMs: 30_000,
  /** Nodes the cluster tracks at most (heartbeat table size). */
  clusterNodesMax: 1_000,
  /** Images are cut into chunks of this size (DESIGN §6). */
  chunkBytes: 256 * 1024,
  /** Encryption: each object is sealed in segments of this size (a power of two). */
  segmentBytes: 1024 * 1024,
  /** Largest object one envelope may hold. */
  objectBytesMax: 4 * 1024 * 1024 * 1024,
  /** Pixels an image may have: checked from its header before anything is allocated. */
  imagePixelsMax: 100_000_000,
  /** Bytes a PNG file may have. */
  pngBytesMax: 512 * 1024 * 1024,
  /** Previews fit in a square of this many pixels. */
  previewPixels: 128,
  /** Tasks a worker pool holds waiting (beyond one running per worker) before it answers "busy". */
  workerQueueMax: 64,
  /** Replicas a placement may ask for. */
  replicasMax: 5,

  // Storage nodes (DESIGN §5, §6).
  /** Operations a storage node runs at once; beyond them it is "waiting" and answers busy. */
  storageInFlightMax: 32,
  /** A storage node's capacity unless told otherwise (`--capacity`). */
  storageCapacityDefaultBytes: 10 * 1024 ** 3,
  storageCapacityMaxBytes: 1024 ** 5,
  /**
   * The vault seals and hides an object in parts of this much plaintext, each in its own
   * generated cover: memory stays bounded by the parts in flight (a 256 KiB part is a cover
   * of 0.7 MP, 2.8 MB as pixels, 0.9 MB as PNG). Measured with the vault bench: 4 MiB parts
   * took 312 MB at peak for a 50 MB upload, 1 MiB parts 87 MB, 256 KiB parts 21 MB, at the
   * same throughput within the noise. A file hidden in the user's own cover is one part, of
   * up to `coverPartBytesMax`. The part size is recorded in the manifest.
   */
  vaultPartBytes: 256 * 1024,
  coverPartBytesMax: 4 * 1024 * 1024,
  /**
   * A manifest's bounds: parts per object, chunks per part (a part's PNG at 1 bit is about
   * 3.5x its plaintext: 4 chunks for 256 KiB). The manifest is one event (at most 512 KiB):
   * 768 parts of 4 chunks at 5 replicas encode to 445 KB, so files up to 192 MiB, until
   * manifests can span several events.
   */
  partsPerObjectMax: 768,
  chunksPerPartMax: 256,
  /**
   * Parts one transfer works on at once (a part is sealed and hidden in one stego worker).
   * One more than a two-core machine's two stego workers, so a part waiting for its placement (a round trip to the
   * leader, which signs its put tickets) does not leave a worker idle: at 4 bits per channel
   * an upload went from 9.6 to 10.7 MB/s with 3 instead of 2, measured in one run.
   */
  partsInFlight: 3,
  /** Chunk puts and gets one transfer keeps in flight (per part). */
  transferConcurrency: 8,
  /** A busy node (or a leader changing) is asked again this many times, after pauses growing by this much. */
  busyRetriesMax: 4,
  busyRetryPauseMs: 100,
  /** Tries of one chunk's put on other nodes before the upload gives up. */
  putAttemptsMax: 3,
  /** Repair: a storage node silent this long has lost its replicas (VEIL_REPAIR_GRACE_MS), how often the leader looks, and how much it copies a round. */
  repairGraceMs: 30_000,
  repairIntervalMs: 2_000,
  repairCopiesPerRound: 64,
  repairCopiesInFlight: 4,
  /**
   * Garbage collection (leader duty): every interval the leader pages through each live
   * storage node's chunks and deletes those no manifest references and nobody has put for
   * the grace period (VEIL_GC_GRACE_MS). The grace must outlast an upload, which puts its
   * chunks before its manifest is recorded; a put of a chunk already held renews it.
   */
  gcGraceMs: 60 * 60_000,
  gcIntervalMs: 30_000,
  gcDeletesPerRound: 4096,
  /** How often a storage node reads back a few of its chunks to find damage (its scrub), and how many each time. */
  scrubIntervalMs: 10_000,
  scrubChunksPerRound: 32,
  /** Copies a garbage collection round records lost (recorded on a node whose listing lacks them), at most. */
  auditLostPerRound: 1024,
  /** Chunks one list page of a storage node holds (64 hex digits and a little each). */
  chunkListPageMax: 1000,
  /** The longest duration any request may name (a year), so arithmetic on it stays exact. */
  durationMsMax: 366 * 24 * 3600_000,
  // Sharing.
  /** Views one grant may give; a grant's expiry at most a year away, by default 30 days. */
  grantViewsMax: 1_000,
  grantExpiryDefaultMs: 30 * 24 * 3600_000,
  /** A request nobody answers expires after this long. */
  requestExpiryMs: 7 * 24 * 3600_000,
  /** Open requests one user may have waiting, outgoing. */
  openRequestsPerUserMax: 64,
  /** A grant's copy is made in memory: objects up to this size can be granted. */
  grantObjectBytesMax: 64 * 1024 * 1024,
  /** Concurrent viewers of one grant race for its sequence; each tries this many times. */
  viewRetriesMax: 40,
  /** How often the leader closes expired grants, expires requests and shreds closed grants. */
  sharingSweepIntervalMs: 2_000,
  sharingSweepActionsMax: 256,
  /** Peers: a presence heartbeat this often (offline after peerHeartbeatTimeoutMs without one). */
  peerHeartbeatIntervalMs: 5_000,
  /** Discoverable objects `veil online` shows per user. */
  discoverablePerUserMax: 32,
  /**
   * Users' peers one server tracks as online, apart from the cluster's own nodes (a flood of
   * accounts going online fills this table, never the one elections and placement read).
   */
  peersOnlineMax: 10_000,
  /** Users one `peer.online` page holds (each with up to discoverablePerUserMax objects). */
  onlinePageMax: 50,
  /** Users `veil online` reads at most; past them it says so, and `veil online <user>` finds anyone. */
  onlineShownMax: 500,
  /** Grants one `grant.inbox` or `grant.list` page holds (each with up to grantViewsMax view times). */
  grantsPageMax: 50,
  /** A 128 x 128 preview PNG, as a peer answers it. */
  previewBytesMax: 256 * 1024,
  /** Items one listing reply holds (a vault's files): a few hundred bytes each, well inside a message. */
  listPageMax: 500,
  /** Pages a client reads of one listing before it stops (a million files). */
  objectsPerUserPagesMax: 2_000,
  /** How long a store request may take before the caller gives up on that node. */
  storeRequestTimeoutMs: 5_000,
  /**
   * Storage tickets (DESIGN §7): a put or get ticket is good for this long, by the leader's
   * clock when it is signed and the storage node's when it is checked, so it must outlast a
   * whole download of the largest object (192 MiB) on a slow link, and a clock skew.
   */
  ticketLifetimeMs: 15 * 60_000,
  /** What one user's objects and uploads may take on the storage nodes, every replica counted (VEIL_QUOTA). */
  userQuotaBytes: 100 * 1024 ** 3,
  /**
   * Chunks one ticket names. A get carries its node's ticket on every request, so a ticket
   * stays small (64 hashes are 4.3 KB beside a 256 KiB chunk); an object with more chunks on
   * a node gets several tickets for it.
   */
  ticketHashesMax: 64,
  /** A ticket's encoded size: its hashes, its other fields and its signature, with room to spare. */
  ticketBytesMax: 64 * 70 + 512,
  /** Tickets a `vault.get` or `grant.view` reply may carry: every chunk of the largest object, on each of its replicas. */
  ticketsPerReplyMax: 1_024,
  /** Verified tickets a storage node remembers, so a download's gets verify its signature once, not per chunk. */
  ticketCacheMax: 1_024,
  /**
   * A storage node started on its own asks the servers for the ticket key (`cluster.keys`)
   * this often, for at most this long; until then it refuses puts and gets as unavailable,
   * and after it it stops with that problem.
   */
  ticketKeyRetryMs: 1_000,
  ticketKeyWaitMs: 5 * 60_000,

  // Identity (DESIGN §7).
  /** Usernames: 3 to 32 characters of a-z 0-9 _ -, starting with a letter. */
  usernameLengthMin: 3,
  usernameLengthMax: 32,
  /** Passwords (checked on the client: the servers never see them), after NFKC normalisation. */
  passwordLengthMin: 10,
  passwordLengthMax: 256,
  emailLengthMax: 254,
  deviceNameLengthMax: 64,
  /** A session lasts this long unless configured otherwise (VEIL_SESSION_TTL). */
  sessionTtlDefaultMs: 24 * 60 * 60 * 1_000,
  sessionTtlMaxMs: 90 * 24 * 60 * 60 * 1_000,
  /** Open sessions one user may hold; logging in beyond this closes the oldest. */
  sessionsPerUserMax: 64,
  /** Devices remembered per user for new-device alerts; the oldest is forgotten first. */
  devicesPerUserMax: 32,
  /** Failed logins in a row that are not slowed down; after that each waits twice as long as the last. */
  loginFailuresFree: 3,
  loginDelayFirstMs: 1_000,
  loginDelayMaxMs: 60_000,
  /** Failures in a row that lock an account (NIST SP 800-63B allows at most 100), and for how long. */
  loginFailuresLock: 20,
  accountLockMs: 15 * 60 * 1_000,
  /**
   * Slow hashes one server runs at once for logins and registrations, and per user and per
   * client address: beyond them a login is refused at once as busy, so a flood costs its
   * sender a retry, not everyone else a queue of memory-hard hashes.
   */
  slowHashesInFlightMax: 16,
  /**
   * Slow hashes one server runs at once for logins from a device the account already knows
   * (its id is sealed in the request, so nobody else can claim it): a lane of their own, so a
   * flood of logins for unknown names or from new devices never refuses a returning user.
   */
  knownDeviceHashesInFlightMax: 8,
  /**
   * Logins per minute one account may make from its known devices:
   * with a slow hash each, one account holds only a small part of the known devices' lane.
   */
  knownDeviceLoginsPerUserPerMinuteMax: 30,
  /** And at once: a quarter of the lane, so only several accounts together could fill it. */
  knownDeviceLoginsInFlightPerUserMax: 2,
  loginsInFlightPerUserMax: 4,
  loginsInFlightPerAddressMax: 8,
  /** Client addresses whose failures are tracked at once; the stalest is forgotten first. */
  loginAddressesTrackedMax: 10_000,
  /** Identity commands run a memory-hard hash on the server, so they get longer than other commands. */
  identityCommandTimeoutMs: 15_000,
  /** Optimistic-concurrency retries of one decision before the caller is told to retry. */
  decisionRetriesMax: 5,
  /** TOTP (RFC 6238): 30-second steps, 6 digits, one step either side accepted. */
  totpStepMs: 30_000,
  totpDigits: 6,
  totpWindowSteps: 1,
  totpSecretBytes: 20,
  backupCodes: 10,
  /** Email one-time codes are valid this long. */
  emailCodeTtlMs: 10 * 60 * 1_000,
  /** A new emailed code is sent at most this often per user, so logins cannot be used to flood a mailbox. */
  emailCodeResendMs: 60 * 1_000,
  /**
   * An object's sealed name and type: a 255-character name is at most 765 bytes of UTF-8, a
   * type 128, and msgpack and the seal add under 60.
   */
  objectMetaSealedBytesMax: 1_024,
  /** Sealed secrets in events (a TOTP seed, an email address): small by nature. */
  sealedSecretBytesMax: 1_024,
  /** Notifications the mailer sends in one round, how often it looks, and how long it waits after a failure. */
  mailerBatchMax: 32,
  mailerIntervalMs: 1_000,
  mailerRetryDelayMs: 10_000,
  /** How long the mailer waits for an SMTP server. */
  smtpTimeoutMs: 10_000,
} as const;
