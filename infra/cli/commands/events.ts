import type { Command } from "commander";
import type { ReadOptions } from "../../../actors/ports.ts";
import { systemClock } from "../../clock.ts";
import { withLog } from "../client.ts";
import { fullSubject, parseSeq, parseSince, printLine, recordToJson, recordToLine, toJson } from "../format.ts";
import { stopSignal } from "../signals.ts";

export function registerEvents(program: Command): void {
  program
    .command("events")
    .description("list decoded events from the log, one per line: seq, time, subject, type, data")
    .option("--subject <subject>", "only this subject or pattern (e.g. node.server-1, veil.evt.node.>)")
    .option("--from <seq>", "start at this stream sequence")
    .option("--since <time>", "start at an ISO time, or a duration back from now (90s, 15m, 2h, 7d)")
    .option("--follow", "keep printing new events as they are appended (Ctrl-C stops)")
    .option("--json", "one JSON object per line")
    .option(
      "--log <file>",
      "read a log dump (a failing simulation seed's, from npm run sim) instead of the broker's log",
    )
    .addHelpText("after", "\nUndecodable entries are shown with their error code (e.g. !event-malformed) and skipped.")
    .action(async (
      options: { subject?: string; from?: string; since?: string; follow?: boolean; json?: boolean; log?: string },
    ) => {
      const read: ReadOptions = {
        subject: options.subject === undefined ? undefined : fullSubject(options.subject),
        fromSeq: options.from === undefined ? undefined : parseSeq(options.from, "--from"),
        since: options.since === undefined ? undefined : parseSince(options.since, systemClock.now()),
      };
      const print = printLine;
      await withLog(options, async ({ log }) => {
        const records = options.follow ? log.follow({ ...read, signal: stopSignal() }) : log.replay(read);
        for await (const record of records) print(options.json ? toJson(recordToJson(record)) : recordToLine(record));
      });
    });
}
