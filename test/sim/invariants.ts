/** What every simulation shares: the election's safety, checked after every step, and seeds that replay. */
import type { LogRecord } from "../../actors/ports.ts";

export class InvariantError extends Error {
  override name = "InvariantError";
}

/** At most one leader per term, ever; and the log's terms go 1, 2, 3, ... with no repeats. */
export class TermInvariants {
  /** Every (term, node) ever seen leading. */
  readonly #leaderOfTerm = new Map<number, string>();

  check(leaders: readonly { node: string; term: number }[], records: readonly LogRecord[], now: number): void {
    for (const { node, term } of leaders) {
      const holder = this.#leaderOfTerm.get(term);
      if (holder !== undefined && holder !== node) {
        throw new InvariantError(`two leaders for term ${term}: ${holder} and ${node} (at ${now} ms)`);
      }
      this.#leaderOfTerm.set(term, node);
    }
    const terms = records.flatMap((record) =>
      record.ok && record.event.type === "LeaderElected" ? [record.event.data.term] : []
    );
    terms.forEach((term, index) => {
      if (term !== index + 1) throw new InvariantError(`the log's terms are not 1, 2, 3, ...: ${terms.join(", ")}`);
    });
  }
}

/** Runs a scenario on a simulation made from `seed`; on failure, says how to replay exactly this seed. */
export async function withSimulation<Simulation extends { shutdown(): void }>(
  seed: number,
  file: string,
  create: (seed: number) => Simulation,
  scenario: (simulation: Simulation) => Promise<void>,
  /** What else a failure leaves for whoever looks into it (a dump of the log), as a line to print. */
  leave?: (simulation: Simulation) => Promise<string>,
): Promise<void> {
  const simulation = create(seed);
  try {
    await scenario(simulation);
  } catch (error) {
    (error as Error).message += `\n  replay: VEIL_SIM_SEED=${seed} npx vitest run ${file}`;
    if (leave) (error as Error).message += `\n  ${await leave(simulation)}`;
    throw error;
  } finally {
    simulation.shutdown();
  }
}
