/**
 * The one way an aggregate changes: read it at its sequence, decide, append the decision
 * with that sequence expected, and, when another writer got there first, read again and
 * decide again (a bounded number of times). The append is answered only once the read model
 * has applied it, so the caller and the next command see what was decided. A decision may
 * also refuse; its events (a failed login's, say) are still appended and applied before the
 * refusal is thrown, so they count for the next attempt however soon it comes.
 */
import type { EventLog } from "../ports.ts";
import { BusyError, ConcurrencyError, limits, type VeilEvent } from "../../events/mod.ts";

export interface Decision {
  readonly events: readonly VeilEvent[];
  /** Thrown once the events are applied: the command is refused, and says why. */
  readonly rejection?: Error;
}

export interface DecideAndAppend<Loaded extends { readonly seq: number }> {
  readonly log: EventLog;
  readonly subject: string;
  /** What the aggregate is, as a refusal names it (`alice`, `grant 3f…`); the subject by default. */
  readonly what?: string;
  /** The aggregate as it stands, with the sequence of its last event (0 for none). */
  readonly load: () => Promise<Loaded>;
  readonly decide: (loaded: Loaded) => Decision | Promise<Decision>;
  /** Resolves once the read model has applied `seq`. */
  readonly applied: (seq: number) => Promise<void>;
  readonly retries?: number;
  /** Waits before the next try after a conflict (many writers racing for one aggregate spread out). */
  readonly pause?: (attempt: number) => Promise<void>;
}

/**
 * Loads an aggregate as the log has it now: its subject's last sequence, once `read` (a
 * projection) has applied it, so the decision reads the latest state whatever its lag.
 */
export function atLatest(
  log: EventLog,
  subject: string,
  read: { waitFor(seq: number, timeoutMs: number): Promise<unknown> },
): () => Promise<{ readonly seq: number }> {
  return async () => {
    const seq = (await log.readLast(subject))?.seq ?? 0;
    await read.waitFor(seq, limits.commandTimeoutMs);
    return { seq };
  };
}

/** Returns what the decision was made against and the sequence of its last event (the loaded one's when it had none). */
export async function decideAndAppend<Loaded extends { readonly seq: number }>(
  options: DecideAndAppend<Loaded>,
): Promise<{ readonly loaded: Loaded; readonly seq: number }> {
  const { log, subject, load, decide, applied, retries = limits.decisionRetriesMax, pause, what = subject } = options;
  for (let attempt = 0; attempt < retries; attempt++) {
    const loaded = await load();
    const decision = await decide(loaded);
    let seq = loaded.seq;
    try {
      if (decision.events.length > 0) {
        seq = (await log.append(subject, decision.events, { expectedSubjectSeq: loaded.seq })).at(-1)!;
        await applied(seq);
      }
    } catch (error) {
      if (!(error instanceof ConcurrencyError)) throw error;
      await pause?.(attempt);
      continue;
    }
    if (decision.rejection) throw decision.rejection;
    return { loaded, seq };
  }
  throw new BusyError(`too many concurrent changes to ${what}; retry`);
}
