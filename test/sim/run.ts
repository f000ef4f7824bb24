/**
 * Long simulation runs: `npm run sim -- --seeds 1000 [--seed S] [--first F] [--rounds R]
 * [--faults network,partitions,servers,storage,disks,rot] [--json]`. Each seed runs the whole
 * system's scenario (scenario.ts) with the faults asked for; a failing seed is printed with
 * the command that replays it and a dump of its log. At the end: seeds per minute, simulated
 * seconds per wall second, and how many distinct fault schedules the seeds tried.
 */
import { parseArgs } from "node:util";
import process from "node:process";
import { type FaultKind, faultKinds, runScenario } from "./scenario.ts";
import { dumpLog, SimSystem } from "./system.ts";

const usage = "usage: npm run sim -- [--seeds N] [--seed S] [--first F] [--rounds R] [--faults " +
  `${faultKinds.join(",")}] [--json]`;

function parse() {
  const { values } = parseArgs({
    options: {
      seeds: { type: "string", default: "100" },
      seed: { type: "string" },
      first: { type: "string", default: "1" },
      rounds: { type: "string", default: "40" },
      faults: { type: "string", default: faultKinds.join(",") },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  const whole = (name: string, text: string, min: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`--${name} takes a whole number >= ${min}\n${usage}`);
    return value;
  };
  const faults = values.faults.split(",").filter(Boolean);
  const unknown = faults.filter((fault) => !(faultKinds as readonly string[]).includes(fault));
  if (unknown.length > 0) throw new Error(`unknown faults ${unknown.join(", ")}; choose from ${faultKinds.join(", ")}`);
  const seeds = values.seed === undefined
    ? Array.from({ length: whole("seeds", values.seeds, 1) }, (_, index) => whole("first", values.first, 0) + index)
    : [whole("seed", values.seed, 0)];
  return { seeds, rounds: whole("rounds", values.rounds, 1), faults: faults as FaultKind[], json: values.json };
}

async function main(): Promise<number> {
  const options = parse();
  const started = performance.now();
  const schedules = new Set<string>();
  // What the seeds did between them: a run where nearly everything failed proves little.
  const done = { uploads: 0, downloads: 0, removes: 0, grants: 0, views: 0, failures: 0 };
  let simulatedMs = 0;
  const failed: number[] = [];
  for (const [index, seed] of options.seeds.entries()) {
    const system = new SimSystem(seed);
    try {
      const ledger = await runScenario(system, { rounds: options.rounds, faults: options.faults });
      schedules.add(ledger.schedule.join(" "));
      for (const kind of ["uploads", "downloads", "removes", "grants", "views"] as const) {
        done[kind] += ledger.done[kind];
      }
      done.failures += ledger.failures;
    } catch (error) {
      failed.push(seed);
      console.error(`seed ${seed} FAILED: ${(error as Error).message}`);
      console.error(
        `  replay: npm run sim -- --seed ${seed} --rounds ${options.rounds} --faults ${options.faults.join(",")}`,
      );
      console.error(`  ${await dumpLog(system, process.cwd())}`);
    } finally {
      simulatedMs += system.elapsedMs;
      system.shutdown();
    }
    if (!options.json && (index + 1) % 25 === 0) {
      process.stderr.write(`${index + 1}/${options.seeds.length} seeds, ${failed.length} failed\n`);
    }
  }
  const wallMs = performance.now() - started;
  const report = {
    seeds: options.seeds.length,
    failed,
    wallSeconds: Number((wallMs / 1000).toFixed(1)),
    seedsPerMinute: Number((options.seeds.length / (wallMs / 60_000)).toFixed(1)),
    simulatedSecondsPerWallSecond: Number((simulatedMs / wallMs).toFixed(1)),
    distinctFaultSchedules: schedules.size,
    done,
  };
  if (options.json) console.log(JSON.stringify(report));
  else {
    console.log(
      `${report.seeds} seeds, ${failed.length} failed${failed.length ? ` (${failed.join(", ")})` : ""}; ` +
        `${report.wallSeconds} s: ${report.seedsPerMinute} seeds/min, ` +
        `${report.simulatedSecondsPerWallSecond} simulated s per wall s, ` +
        `${report.distinctFaultSchedules} distinct fault schedules; done: ${
          Object.entries(done).map(([kind, count]) => `${count} ${kind}`).join(", ")
        }`,
    );
  }
  return failed.length === 0 ? 0 : 1;
}

main().then((code) => process.exit(code), (error: Error) => {
  console.error(error.message);
  process.exit(2);
});
