/**
 * The `veil` command line. Runs unchanged on Node (through tsx) and Deno. Typed errors
 * become one clear line on stderr and a stable exit status; nothing prints a stack trace
 * at a user unless VEIL_LOG=debug.
 */
import process from "node:process";
import { Command, CommanderError } from "commander";
import { type ErrorCode, VeilError } from "../../events/mod.ts";
import { registerAccount } from "./commands/account.ts";
import { terminalSafe } from "./format.ts";
import { registerBroker } from "./commands/broker.ts";
import { registerDecode } from "./commands/decode.ts";
import { registerEvents } from "./commands/events.ts";
import { registerState } from "./commands/state.ts";
import { registerCluster } from "./commands/cluster.ts";
import { registerStego } from "./commands/stego.ts";
import { registerNode, registerUp } from "./commands/up.ts";
import { registerSharing } from "./commands/sharing.ts";
import { registerVault } from "./commands/vault.ts";

/** Exit statuses by error code; documented in the README. */
const exitStatus: Record<ErrorCode, number> = {
  validation: 2,
  "not-found": 3,
  conflict: 4,
  forbidden: 5,
  unavailable: 6,
  timeout: 6,
  integrity: 8,
  busy: 9,
  unauthenticated: 10,
  "event-malformed": 7,
  "event-too-large": 7,
  "event-unknown-type": 7,
  "event-newer-version": 7,
  "event-invalid-data": 7,
};

export function buildProgram(): Command {
  const program = new Command("veil")
    .description("veil: a private image vault and sharing network (event-sourced, on NATS JetStream)")
    .showHelpAfterError("(add --help for usage)")
    .exitOverride();
  registerUp(program);
  registerNode(program);
  registerBroker(program);
  registerCluster(program);
  registerAccount(program);
  registerVault(program);
  registerSharing(program);
  registerEvents(program);
  registerState(program);
  registerDecode(program);
  registerStego(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version are not failures; usage mistakes were already explained by commander.
      return error.exitCode === 0 ? 0 : 2;
    }
    if (error instanceof VeilError) {
      // Messages can carry text from the network (names, a server's words): made safe for a terminal.
      process.stderr.write(`veil: ${terminalSafe(error.message)}\n`);
      // What led to it, for whoever asks (VEIL_LOG=debug): a broker's words, a timeout's subject.
      if (process.env.VEIL_LOG === "debug") {
        for (let cause = error.cause; cause instanceof Error; cause = cause.cause) {
          process.stderr.write(`  because: ${terminalSafe(cause.message)}\n`);
        }
      }
      return exitStatus[error.code];
    }
    process.stderr.write(`veil: unexpected error: ${terminalSafe((error as Error).message)}\n`);
    if (process.env.VEIL_LOG === "debug") process.stderr.write(`${(error as Error).stack}\n`);
    return 1;
  }
}
