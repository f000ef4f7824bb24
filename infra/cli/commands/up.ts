import process from "node:process";
import { type Command, Option } from "commander";
import { subjectToken, ValidationError } from "../../../events/mod.ts";
import { systemClock } from "../../clock.ts";
import { loadConfig } from "../../config.ts";
import { runNode, up } from "../../launcher/up.ts";
import { createLogger } from "../../log.ts";
import { stopSignal } from "../signals.ts";

const environmentHelp = "\nEnvironment:\n  NATS_URL              broker to use (default nats://127.0.0.1:4222)\n" +
  "  VEIL_DATA             data folder (default ./.veil)\n  VEIL_STREAM_REPLICAS  JetStream replicas (default 1)\n" +
  "  VEIL_LOG              debug, info, warn, error, silent (default info)";

/** Servers one `veil up` may run in its process. */
const serversPerProcessMax = 16;

function run(serverIds: string[], runner: typeof up) {
  const config = loadConfig();
  const logger = createLogger({ level: config.logLevel, clock: systemClock });
  return runner({
    config,
    serverIds,
    logger,
    print: (line) => process.stdout.write(line + "\n"),
    signal: stopSignal(),
  });
}

export function registerUp(program: Command): void {
  program
    .command("up")
    .description("run veil on this machine: the broker (a private nats-server if none listens) and N server actors")
    .option("--servers <n>", `how many server actors to run in this process (1..${serversPerProcessMax})`, "3")
    .option("--prefix <name>", "server ids are <name>-1 .. <name>-N", "server")
    .addHelpText("after", environmentHelp)
    .action(async (options: { servers: string; prefix: string }) => {
      const count = Number(options.servers);
      if (!Number.isInteger(count) || count < 1 || count > serversPerProcessMax) {
        throw new ValidationError(
          `--servers must be a whole number from 1 to ${serversPerProcessMax}, got ${options.servers}`,
        );
      }
      const ids = Array.from(
        { length: count },
        (_, index) => subjectToken(`${options.prefix}-${index + 1}`, "--prefix"),
      );
      process.exitCode = await run(ids, up);
    });
}

export function registerNode(program: Command): void {
  program
    .command("node")
    .description("run one actor in this process, on the broker at NATS_URL (for several machines)")
    .addOption(new Option("--role <role>", "what the node is").choices(["server"]).makeOptionMandatory())
    .requiredOption("--id <id>", "its id: letters, digits, - and _ (higher ids win elections)")
    .addHelpText("after", environmentHelp)
    .action(async (options: { role: "server"; id: string }) => {
      process.exitCode = await run([subjectToken(options.id, "--id")], runNode);
    });
}
