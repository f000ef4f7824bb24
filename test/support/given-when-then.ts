/**
 * Given events, when a command, then events (or a typed refusal): the one shape every
 * decider test takes. `given` folds the events with the projection the decider reads;
 * `when` runs the decider on that state; `then` checks the event types it decided and lets
 * the test look closer.
 */
import { expect } from "vitest";

interface Decided<Event> {
  readonly events: readonly Event[];
  readonly rejection?: { readonly code?: string; readonly message: string };
}

/** `Context`: what else a decision takes besides the command (the time, say), given to `when`. */
export function decider<State, Event extends { readonly type: string }, Command, Context = never>(options: {
  readonly initial: State;
  readonly evolve: (state: State, event: Event) => State;
  readonly decide: (command: Command, state: State, context?: Context) => Decided<Event> | readonly Event[];
}) {
  const decisionOf = (decided: Decided<Event> | readonly Event[]): Decided<Event> =>
    Array.isArray(decided) ? { events: decided } : decided as Decided<Event>;
  return function given(...events: Event[]) {
    const state = events.reduce(options.evolve, options.initial);
    return {
      state,
      when(command: Command, context?: Context) {
        const decision = () => decisionOf(options.decide(command, state, context));
        return {
          then(types: Event["type"][], check: (events: readonly Event[]) => void = () => {}) {
            const decided = decision();
            expect(decided.events.map((event) => event.type)).toEqual(types);
            expect(decided.rejection).toBeUndefined();
            check(decided.events);
          },
          /** Decided events that are recorded although the command is refused (a failed login's). */
          thenRecordsAndRefuses(
            types: Event["type"][],
            code: string,
            message: RegExp,
            check: (events: readonly Event[]) => void = () => {},
          ) {
            const decided = decision();
            expect(decided.events.map((event) => event.type)).toEqual(types);
            expect(decided.rejection?.code).toBe(code);
            expect(decided.rejection?.message).toMatch(message);
            check(decided.events);
          },
          thenRefuses(code: string, message: RegExp) {
            let refusal: { code?: string; message: string } | undefined;
            try {
              refusal = decision().rejection;
            } catch (error) {
              refusal = error as { code?: string; message: string };
            }
            expect(refusal?.code).toBe(code);
            expect(refusal?.message).toMatch(message);
          },
        };
      },
    };
  };
}
