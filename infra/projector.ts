/**
 * Runs projections over the log. `Projector` keeps one projection live: it starts from a
 * snapshot (or sequence 1), catches up, follows, and snapshots every so often and when it
 * stops. `projectUntil` folds a projection up to a sequence or a moment: time travel.
 * Both apply entries the same way, so live state and rebuilt state cannot differ.
 */
import type { EventLog, Logger, LogRecord, SnapshotStore } from "../actors/ports.ts";
import { limits, TimeoutError, UnavailableError } from "../events/mod.ts";
import type { Projection } from "../projections/mod.ts";

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
    return { ...position, seq: record.seq, storedAt: record.storedAt };
  }
  return { state: projection.evolve(position.state, record.event), seq: record.seq, storedAt: record.storedAt };
}

async function startingPosition<State>(
  projection: Projection<State>,
  snapshots: SnapshotStore | undefined,
  logger: Logger,
  usable: (snapshot: { seq: number; storedAt: number }) => boolean = () => true,
): Promise<Position<State>> {
  const initial = { state: projection.initial(), seq: 0, storedAt: 0 };
  if (!snapshots) return initial;
  try {
    const snapshot = await snapshots.load(projection.name);
    if (!snapshot) return initial;
    if (snapshot.version !== projection.version) {
      logger.info("snapshot is from another projection version; rebuilding from the log", {
        projection: projection.name,
        snapshotVersion: snapshot.version,
        version: projection.version,
      });
      return initial;
    }
    return usable(snapshot)
      ? { state: snapshot.state as State, seq: snapshot.seq, storedAt: snapshot.storedAt }
      : initial;
  } catch (error) {
    // A snapshot is only a cache: an unreadable one costs a rebuild, nothing more.
    logger.warn("snapshot unreadable; rebuilding from the log", {
      projection: projection.name,
      reason: (error as Error).message,
    });
    return initial;
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
  let position = await startingPosition(
    projection,
    options.snapshots,
    logger,
    (snapshot) =>
      (untilSeq === undefined || snapshot.seq <= untilSeq) &&
      (untilTime === undefined || snapshot.storedAt <= untilTime),
  );
  let skipped = 0;
  for await (const record of log.replay({ fromSeq: position.seq + 1, untilSeq, untilTime })) {
    if (!record.ok) skipped++;
    position = apply(projection, position, record, logger);
  }
  return { ...position, skipped };
}

export class Projector<State> {
  #position: Position<State>;
  #appliedSinceSnapshot = 0;
  #failure: Error | undefined;
  #following: Promise<void> | undefined;
  #saving: Promise<void> = Promise.resolve();
  readonly #abort = new AbortController();
  readonly #listeners = new Set<() => void>();
  #reportFailure: (error: Error) => void = () => {};
  /** Settles (never rejects) if the projector stops following the log on its own. */
  readonly failed: Promise<Error> = new Promise((resolve) => (this.#reportFailure = resolve));

  constructor(
    private readonly deps: {
      log: EventLog;
      snapshots: SnapshotStore;
      projection: Projection<State>;
      logger: Logger;
      snapshotEveryEvents?: number;
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

  /** Loads the snapshot, starts following, and resolves once caught up with the log as it was. */
  async start(options: { catchUpTimeoutMs: number }): Promise<void> {
    if (this.#following) throw new Error("programmer error: projector started twice");
    const { log, projection, snapshots, logger } = this.deps;
    this.#position = await startingPosition(projection, snapshots, logger);
    const target = await log.lastSeq();
    this.#following = this.#follow();
    await this.waitFor(target, options.catchUpTimeoutMs);
    logger.debug("projection caught up", { projection: projection.name, seq: this.seq });
  }

  /** Resolves when the projection has applied `seq`; rejects after `timeoutMs` or if following failed. */
  waitFor(seq: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.#failure) finish(this.#failure);
        else if (this.#position.seq >= seq) finish();
      };
      const finish = (error?: Error) => {
        clearTimeout(timer);
        this.#listeners.delete(check);
        if (error) reject(error);
        else resolve();
      };
      const timer = setTimeout(
        () =>
          finish(
            new TimeoutError(
              `projection ${this.deps.projection.name} did not reach sequence ${seq} within ${timeoutMs} ms (at ${this.seq})`,
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
    await this.#following;
    await this.#snapshot();
  }

  async #follow(): Promise<void> {
    const { log, projection, logger } = this.deps;
    const every = this.deps.snapshotEveryEvents ?? limits.snapshotEveryEvents;
    try {
      for await (const record of log.follow({ fromSeq: this.seq + 1, signal: this.#abort.signal })) {
        this.#position = apply(projection, this.#position, record, logger);
        if (++this.#appliedSinceSnapshot >= every) void this.#snapshot();
        for (const listener of this.#listeners) listener();
      }
    } catch (error) {
      this.#failure = new UnavailableError(
        `projection ${projection.name} stopped following the log: ${(error as Error).message}`,
        { cause: error },
      );
      logger.error("projection stopped following the log", {
        projection: projection.name,
        reason: (error as Error).message,
      });
      this.#reportFailure(this.#failure);
      for (const listener of this.#listeners) listener();
    }
  }

  /** Saves are chained, so an older snapshot can never land after a newer one. */
  #snapshot(): Promise<void> {
    if (this.#appliedSinceSnapshot === 0) return this.#saving;
    const { projection, snapshots, logger } = this.deps;
    const { seq, storedAt, state } = this.#position;
    this.#appliedSinceSnapshot = 0;
    this.#saving = this.#saving.then(async () => {
      try {
        await snapshots.save(projection.name, { seq, storedAt, version: projection.version, state });
      } catch (error) {
        logger.warn("snapshot not saved", { projection: projection.name, seq, reason: (error as Error).message });
      }
    });
    return this.#saving;
  }
}
