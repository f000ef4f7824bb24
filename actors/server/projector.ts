/**
 * Runs projections over the log. `Projector` keeps one projection live: it starts from a
 * snapshot (or sequence 1), catches up, follows, and snapshots every so often and when it
 * stops. `projectUntil` folds a projection up to a sequence or a moment: time travel.
 * Both apply entries the same way, so live state and rebuilt state cannot differ.
 */
import type { Clock, EventLog, Logger, LogRecord, SnapshotStore, Timers } from "../ports.ts";
import { limits, TimeoutError, UnavailableError, VeilError } from "../../events/mod.ts";
import type { Projection } from "../../projections/mod.ts";

interface Position<State> {
  readonly state: State;
  /** The last stream sequence applied (decoded or skipped). */
  readonly seq: number;
  readonly storedAt: number;
}

/** Applies one log entry; an undecodable one is logged and skipped, but still advances the position. */
function apply<State>(
  projection: Projection<State>,
  position: Position<State>,
  record: LogRecord,
  logger: Logger,
): Position<State> {
  if (!record.ok) {
    logger.warn("skipped undecodable event", {
      projection: projection.name,
      seq: record.seq,
      subject: record.subject,
      code: record.error.code,
      reason: record.error.message,
    });
    return { state: position.state, seq: record.seq, storedAt: record.storedAt };
  }
  return { state: projection.evolve(position.state, record.event), seq: record.seq, storedAt: record.storedAt };
}

/**
 * Where folding starts: the snapshot when it is usable, otherwise the initial state. A
 * snapshot is only a cache, so anything doubtful about it (unreadable, another projection
 * version, another log, ahead of the log, past the time-travel target) costs a rebuild.
 */
async function startingPosition<State>(
  options: {
    projection: Projection<State>;
    log: EventLog;
    snapshots?: SnapshotStore;
    logger: Logger;
    usable?: (snapshot: { seq: number; storedAt: number }) => boolean;
  },
): Promise<Position<State>> {
  const { projection, log, snapshots, logger, usable = () => true } = options;
  const initial = { state: projection.initial(), seq: 0, storedAt: 0 };
  if (!snapshots) return initial;
  const discard = (why: string) => {
    logger.info(`snapshot not used (${why}); folding from sequence 1`, { projection: projection.name });
    return initial;
  };
  try {
    const snapshot = await snapshots.load(projection.name);
    if (!snapshot) return initial;
    if (snapshot.version !== projection.version) return discard(`written by projection version ${snapshot.version}`);
    if (snapshot.logIdentity !== (await log.identity())) return discard("written from a log that no longer exists");
    if (snapshot.seq > (await log.lastSeq())) return discard("ahead of the log");
    if (!usable(snapshot)) return initial;
    return { state: snapshot.state as State, seq: snapshot.seq, storedAt: snapshot.storedAt };
  } catch (error) {
    return discard(`unreadable: ${(error as Error).message}`);
  }
}

export interface ProjectionAt<State> extends Position<State> {
  /** Entries in range that could not be decoded (logged and left out of the state). */
  readonly skipped: number;
}

/** Folds a projection up to `untilSeq` or `untilTime` (stored time, epoch ms), or to the end of the log. */
export async function projectUntil<State>(options: {
  log: EventLog;
  projection: Projection<State>;
  logger: Logger;
  snapshots?: SnapshotStore;
  untilSeq?: number;
  untilTime?: number;
}): Promise<ProjectionAt<State>> {
  const { log, projection, logger, untilSeq, untilTime } = options;
  let position = await startingPosition({
    ...options,
    usable: (snapshot) =>
      (untilSeq === undefined || snapshot.seq <= untilSeq) &&
      (untilTime === undefined || snapshot.storedAt <= untilTime),
  });
  let skipped = 0;
  for await (const record of log.replay({ fromSeq: position.seq + 1, untilSeq, untilTime })) {
    if (!record.ok) skipped++;
    position = apply(projection, position, record, logger);
  }
  return { ...position, skipped };
}

/**
 * A follow that failed for a reason that passes, as the log says (a broker cluster electing,
 * the node reached cut off): anything else (a closed connection, the log gone) is final.
 */
const retryableFollowError = (error: unknown) => error instanceof UnavailableError || error instanceof TimeoutError;

/** The projector was stopped before what was asked of it happened. */
export class ProjectorStoppedError extends Error {
  constructor(name: string) {
    super(`projection ${name} was stopped`);
    this.name = "ProjectorStoppedError";
  }
}

export class Projector<State> {
  #position: Position<State>;
  #logIdentity = "";
  #appliedSinceSnapshot = 0;
  #failure: Error | undefined;
  #following: Promise<void> | undefined;
  #saving: Promise<void> = Promise.resolve();
  readonly #abort = new AbortController();
  readonly #listeners = new Set<() => void>();
  #reportFailure: (error: Error) => void = () => {};
  #restartFollow: () => void = () => {};
  /** Since when the projection has been behind `target`, a sequence the log had reached. */
  #behind: { since: number; target: number } | undefined;
  /** Settles (never rejects) if the projector stops following the log without being asked to. */
  readonly failed: Promise<Error> = new Promise((resolve) => (this.#reportFailure = resolve));

  constructor(
    private readonly deps: {
      log: EventLog;
      snapshots: SnapshotStore;
      projection: Projection<State>;
      logger: Logger;
      timers: Timers;
      clock: Clock;
      snapshotEveryEvents?: number;
      /** How often the watchdog compares the projection with the log (limits.followCheckIntervalMs). */
      followCheckIntervalMs?: number;
    },
  ) {
    this.#position = { state: deps.projection.initial(), seq: 0, storedAt: 0 };
  }

  get state(): State {
    return this.#position.state;
  }

  get seq(): number {
    return this.#position.seq;
  }

  /**
   * Loads the snapshot, catches up with the log as it stands (a bounded replay), then
   * follows live from the next sequence. Resolves once caught up.
   */
  async start(): Promise<void> {
    if (this.#following) throw new Error("programmer error: projector started twice");
    const { log, projection, logger } = this.deps;
    const signal = this.#abort.signal;
    this.#logIdentity = await log.identity();
    this.#position = await startingPosition(this.deps);
    for await (const record of log.replay({ fromSeq: this.seq + 1 })) {
      if (signal.aborted) break;
      this.#applied(record);
    }
    if (signal.aborted) throw new ProjectorStoppedError(projection.name);
    this.#following = this.#follow();
    logger.debug("projection caught up", { projection: projection.name, seq: this.seq });
  }

  /** Resolves once the projection has applied everything appended before this call. */
  async caughtUp(timeoutMs: number = limits.commandTimeoutMs): Promise<void> {
    await this.waitFor(await this.deps.log.lastSeq(), timeoutMs);
  }

  /**
   * Resolves when the projection has applied `seq`; rejects after `timeoutMs`, if following
   * failed, or at once when the projector is stopped.
   */
  waitFor(seq: number, timeoutMs: number): Promise<void> {
    const { name } = this.deps.projection;
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.#failure) finish(this.#failure);
        else if (this.#position.seq >= seq) finish();
        else if (this.#abort.signal.aborted) finish(new ProjectorStoppedError(name));
      };
      const finish = (error?: Error) => {
        this.deps.timers.clearTimeout(timer);
        this.#listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const timer = this.deps.timers.setTimeout(
        () =>
          finish(
            new TimeoutError(
              `projection ${name} did not reach sequence ${seq} within ${timeoutMs} ms (at ${this.seq})`,
            ),
          ),
        timeoutMs,
      );
      this.#listeners.add(check);
      check();
    });
  }

  /** Stops following and saves a snapshot of what was applied. */
  async stop(): Promise<void> {
    this.#abort.abort();
    this.#notify();
    await this.#following;
    await this.#snapshot();
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }

  /** Applies one entry, snapshots every so often, and wakes whoever waits for a sequence. */
  #applied(record: LogRecord): void {
    const { projection, logger } = this.deps;
    this.#position = apply(projection, this.#position, record, logger);
    if (++this.#appliedSinceSnapshot >= (this.deps.snapshotEveryEvents ?? limits.snapshotEveryEvents)) {
      void this.#snapshot();
    }
    this.#notify();
  }

  /**
   * How long the projection has been behind a sequence the log had reached (0 when it is
   * caught up), as the watchdog last saw it: what the server's heartbeat reports, so
   * `veil health` shows a server whose state lags the log.
   */
  behindMs(now: number): number {
    return this.#behind ? now - this.#behind.since : 0;
  }

  /**
   * Follows the log; a follow that stops delivering while the log moves on (seen when a
   * broker node of a cluster dies under the consumer) is noticed by the watchdog within two
   * checks and replaced by a new one from the next sequence. Entries are applied once only,
   * so an old follow that wakes up late delivers nothing twice.
   */
  async #follow(): Promise<void> {
    const { log, projection, logger, clock } = this.deps;
    const signal = this.#abort.signal;
    const stopWatching = this.#watch();
    // Since when following has failed without a single entry delivered, and how many times.
    let failing: { since: number; attempts: number } | undefined;
    try {
      while (!signal.aborted) {
        const attempt = new AbortController();
        const stopAttempt = () => attempt.abort();
        signal.addEventListener("abort", stopAttempt, { once: true });
        this.#restartFollow = stopAttempt;
        const before = this.seq;
        try {
          for await (const record of log.follow({ fromSeq: this.seq + 1, signal: attempt.signal })) {
            if (record.seq > this.seq) this.#applied(record);
          }
          // A live follow only ends when asked to; anything else (a closed connection) is a failure.
          if (!attempt.signal.aborted) throw new UnavailableError("the log stopped delivering");
          failing = undefined;
          if (!signal.aborted) {
            logger.warn("projection stalled behind the log; following again", {
              projection: projection.name,
              seq: this.seq,
            });
          }
        } catch (error) {
          // The broker (or the node it reached) cannot serve a follow now: a cluster electing, a
          // host cut off. Retried, with a growing pause, for a bounded time; anything else is fatal.
          if (!retryableFollowError(error) || signal.aborted) throw error;
          if (this.seq > before) failing = undefined;
          failing ??= { since: clock.now(), attempts: 0 };
          failing.attempts++;
          if (clock.now() - failing.since > limits.followRetryWindowMs) throw error;
          if (failing.attempts === 1) {
            logger.warn("projection cannot follow the log; retrying", {
              projection: projection.name,
              seq: this.seq,
              reason: (error as Error).message,
            });
          }
          await this.#pause(Math.min(limits.followRetryDelayMaxMs, 100 * 2 ** failing.attempts));
        } finally {
          signal.removeEventListener("abort", stopAttempt);
        }
      }
    } catch (error) {
      const reason = (error as Error).message;
      this.#failure = error instanceof VeilError && !(error instanceof UnavailableError)
        ? error
        : new Error(`projection ${projection.name} stopped at sequence ${this.seq}: ${reason}`, { cause: error });
      logger.error("projection stopped following the log", { projection: projection.name, seq: this.seq, reason });
      this.#reportFailure(this.#failure);
      this.#notify();
    } finally {
      stopWatching();
    }
  }

  /** Waits `ms`, or less if the projector is stopped. */
  #pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const { timers } = this.deps;
      const done = () => {
        timers.clearTimeout(timer);
        this.#abort.signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = timers.setTimeout(done, ms);
      this.#abort.signal.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Every limits.followCheckIntervalMs, compares the projection with the log's last
   * sequence: behind with no progress since the last check means the follow stalled.
   * Returns what stops it.
   */
  #watch(): () => void {
    const { log, timers, clock } = this.deps;
    let lastCheck: { seq: number; logSeq: number } | undefined;
    let watching = true;
    let timer: unknown;
    const check = async () => {
      try {
        const logSeq = await log.lastSeq();
        const now = clock.now();
        if (this.#behind && this.seq >= this.#behind.target) this.#behind = undefined;
        if (this.seq < logSeq) this.#behind ??= { since: now, target: logSeq };
        const stalled = lastCheck !== undefined && lastCheck.seq < lastCheck.logSeq && this.seq === lastCheck.seq;
        lastCheck = stalled ? undefined : { seq: this.seq, logSeq };
        if (stalled && watching) this.#restartFollow();
      } catch {
        // The log cannot say where it is just now (a broker reconnecting): check again next time.
      }
      if (watching) timer = timers.setTimeout(() => void check(), interval);
    };
    const interval = this.deps.followCheckIntervalMs ?? limits.followCheckIntervalMs;
    timer = timers.setTimeout(() => void check(), interval);
    return () => {
      watching = false;
      timers.clearTimeout(timer);
    };
  }

  /** Saves are chained, so an older snapshot can never land after a newer one. */
  #snapshot(): Promise<void> {
    if (this.#appliedSinceSnapshot === 0) return this.#saving;
    const { projection, snapshots, logger } = this.deps;
    const { seq, storedAt, state } = this.#position;
    const logIdentity = this.#logIdentity;
    this.#appliedSinceSnapshot = 0;
    this.#saving = this.#saving.then(async () => {
      try {
        await snapshots.save(projection.name, { logIdentity, seq, storedAt, version: projection.version, state });
      } catch (error) {
        logger.warn("snapshot not saved", { projection: projection.name, seq, reason: (error as Error).message });
      }
    });
    return this.#saving;
  }
}
