import process from "node:process";
import type { Command } from "commander";
import { subjectToken } from "../../../events/mod.ts";
import { systemClock } from "../../clock.ts";
import { loadConfig } from "../../config.ts";
import { up } from "../../launcher/up.ts";
import { createLogger } from "../../log.ts";
import { stopSignal } from "../signals.ts";

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run veil on this machine: broker (a private nats-server if none answers), streams and server actors")
    .option("--id <id>", "id of the server actor", "server-1")
    .addHelpText(
      "after",
      "\nEnvironment:\n  NATS_URL              broker to use (default nats://127.0.0.1:4222)\n" +
        "  VEIL_DATA             data folder (default ./.veil)\n  VEIL_STREAM_REPLICAS  JetStream replicas (default 1)\n" +
        "  VEIL_LOG              debug, info, warn, error, silent (default info)",
    )
    .action(async (options: { id: string }) => {
      const config = loadConfig();
      const serverId = subjectToken(options.id, "--id");
      const logger = createLogger({ level: config.logLevel, clock: systemClock });
      process.exitCode = await up({
        config,
        serverId,
        logger,
        print: (line) => process.stdout.write(line + "\n"),
        signal: stopSignal(),
      });
    });
}
