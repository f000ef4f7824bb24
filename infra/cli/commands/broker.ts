/**
 * `veil broker`: the broker's config and identities, for operators who run nats-server
 * themselves or spread veil's processes over several machines.
 */
import process from "node:process";
import { join } from "node:path";
import { type Command, Option } from "commander";
import { ValidationError } from "../../../events/mod.ts";
import { loadConfig } from "../../config.ts";
import { brokerConfig } from "../../nats/broker-config.ts";
import { identitiesPath, loadOrCreateIdentities, publicIdentities, trustedKinds } from "../../nats/identities.ts";

const print = (text: string) => process.stdout.write(text);

export function registerBroker(program: Command): void {
  const broker = program
    .command("broker")
    .description("the broker's generated config and identities (for running nats-server yourself)");

  broker
    .command("config")
    .description("print the nats-server config veil's broker runs with (accounts, identities, permissions)")
    .option("--store <folder>", "where JetStream keeps its files (default <data>/nats)")
    .option("--host <host>", "the address to listen on (default: nats-server's own, every interface)")
    .option("--port <port>", "the port to listen on (default: nats-server's own, 4222)")
    .option("--require-client-credential", "refuse anonymous users' machines: they need the client password")
    .addHelpText(
      "after",
      "\nThe identities come from <data>/broker/identities.json (made on first use, mode 0600).\n" +
        "Run:  veil broker config > veil.conf && nats-server -c veil.conf",
    )
    .action(async (options: { store?: string; host?: string; port?: string; requireClientCredential?: boolean }) => {
      const config = loadConfig();
      const port = options.port === undefined ? undefined : Number(options.port);
      if (port !== undefined && !(Number.isInteger(port) && port >= 1 && port <= 65_535)) {
        throw new ValidationError(`--port must be a port number from 1 to 65535, got ${options.port}`);
      }
      const identities = await loadOrCreateIdentities(config.dataFolder);
      print(brokerConfig({
        identities: publicIdentities(identities),
        storeFolder: options.store ?? join(config.dataFolder, "nats"),
        ...(options.host ? { host: options.host } : {}),
        ...(port ? { port } : {}),
        requireClientCredential: options.requireClientCredential ?? config.requireClientCredential,
      }));
    });

  broker
    .command("identities")
    .description("print broker identities as a file for VEIL_CREDS on another machine (keep it private)")
    .addOption(
      new Option("--only <kind...>", "only these identities (least privilege: a storage machine needs only storage)")
        .choices([...trustedKinds, "client"]),
    )
    .action(async (options: { only?: string[] }) => {
      const config = loadConfig();
      const identities = await loadOrCreateIdentities(config.dataFolder);
      const kinds = options.only ?? Object.keys(identities);
      const chosen = Object.fromEntries(
        Object.entries(identities).filter(([kind]) => kinds.includes(kind)),
      );
      print(JSON.stringify(chosen, null, 2) + "\n");
      process.stderr.write(`from ${identitiesPath(config.dataFolder)}; store the copy with mode 0600\n`);
    });
}
