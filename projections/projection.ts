/**
 * The projection contract: a pure read model. `evolve` takes time from `event.at` and
 * nothing else, so folding the same events always gives the same state, whether live,
 * rebuilt from sequence 1, or stopped at a past moment for time travel.
 */
import type { VeilEvent } from "../events/mod.ts";

export interface Projection<State> {
  readonly name: string;
  /** One line for `veil state --help`. */
  readonly description: string;
  /**
   * Bumped whenever `evolve` changes meaning; a snapshot taken at another version is
   * discarded and the state rebuilt from the log.
   */
  readonly version: number;
  initial(): State;
  /** Must not mutate `state`: return a new value (earlier states may still be in use). */
  evolve(state: State, event: VeilEvent): State;
}

export function fold<State>(
  projection: Projection<State>,
  events: Iterable<VeilEvent>,
  state: State = projection.initial(),
): State {
  let current = state;
  for (const event of events) current = projection.evolve(current, event);
  return current;
}
