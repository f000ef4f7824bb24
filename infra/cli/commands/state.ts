import type { Command } from "commander";
import { ValidationError } from "../../../events/mod.ts";
import { findProjection, projections } from "../../../projections/mod.ts";
import { projectUntil } from "../../../actors/server/projector.ts";
import { withLog } from "../client.ts";
import { parseAt, printLine, toJson } from "../format.ts";
import { renderState } from "../render.ts";

export function registerState(program: Command): void {
  program
    .command("state")
    .description("show a projection's state, now or at a past point of the log (time travel)")
    .argument("<projection>", `one of: ${projections.map((projection) => projection.name).join(", ")}`)
    .option("--at <seq|time>", "fold the log only up to this stream sequence or ISO time")
    .option("--json", "print {projection, seq, time, skipped, state} as JSON")
    .option(
      "--log <file>",
      "fold a log dump (a failing simulation seed's, from npm run sim) instead of the broker's log",
    )
    .addHelpText(
      "after",
      `\nProjections:\n${
        projections.map((projection) => `  ${projection.name.padEnd(10)} ${projection.description}`).join("\n")
      }` +
        "\n\nExamples:\n  veil state cluster\n  veil state cluster --at 42\n  veil state cluster --at 2026-11-20T10:00:00Z --json\n  veil state images --log sim-seed-1004.veillog --at 120",
    )
    .action(async (name: string, options: { at?: string; json?: boolean; log?: string }) => {
      const projection = findProjection(name);
      if (!projection) {
        throw new ValidationError(
          `unknown projection ${JSON.stringify(name)}; choose one of ${
            projections.map((known) => known.name).join(", ")
          }`,
        );
      }
      const at = options.at === undefined ? undefined : parseAt(options.at);
      const result = await withLog(options, ({ log, snapshots, logger }) =>
        projectUntil({
          log,
          snapshots,
          projection,
          logger,
          untilSeq: at && "seq" in at ? at.seq : undefined,
          untilTime: at && "time" in at ? at.time : undefined,
        }));
      const time = result.seq === 0 ? null : new Date(result.storedAt).toISOString();
      const print = printLine;
      if (options.json) {
        print(toJson({ projection: name, seq: result.seq, time, skipped: result.skipped, state: result.state }));
        return;
      }
      print(`${name} as of seq ${result.seq}${time ? ` (${time})` : " (empty log)"}`);
      if (result.skipped > 0) print(`(${result.skipped} undecodable entries skipped; see \`veil events\`)`);
      for (const line of renderState(name, result.state)) print(line);
    });
}
