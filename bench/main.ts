/**
 * `npm run bench -- [suite...] [--json]`: runs the named suites (all when none is named).
 * Human lines go to stderr as they are measured; with --json, stdout gets one JSON object
 * per suite whose fields are its figures (ratios named `*_ratio`).
 */
import process from "node:process";
import { parseArgs } from "node:util";
import { clusterSuite } from "./suites/cluster.ts";
import { eventstoreSuite } from "./suites/eventstore.ts";
import { failoverSuite } from "./suites/failover.ts";
import { identitySuite } from "./suites/identity.ts";
import { stegoCryptoSuite } from "./suites/stego-crypto.ts";
import { vaultSuite } from "./suites/vault.ts";
import type { Suite } from "./suite.ts";

const suites: readonly Suite[] = [
  eventstoreSuite,
  clusterSuite,
  failoverSuite,
  stegoCryptoSuite,
  identitySuite,
  vaultSuite,
];

const usage = `usage: npm run bench -- [suite...] [--json]\nsuites:\n${
  suites.map((suite) => `  ${suite.name.padEnd(12)} ${suite.description}`).join("\n")
}`;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    args: process.argv.slice(2),
    options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    allowPositionals: true,
  });
  if (values.help) {
    process.stdout.write(usage + "\n");
    return 0;
  }
  const unknown = positionals.filter((name) => !suites.some((suite) => suite.name === name));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown suite ${unknown.join(", ")}\n${usage}\n`);
    return 2;
  }
  const chosen = positionals.length === 0 ? suites : suites.filter((suite) => positionals.includes(suite.name));
  for (const suite of chosen) {
    process.stderr.write(`${suite.name}: ${suite.description}\n`);
    const figures = await suite.run((line) => process.stderr.write(`  ${line}\n`));
    if (values.json) process.stdout.write(JSON.stringify({ suite: suite.name, ...figures }) + "\n");
  }
  return 0;
}

process.exit(await main());
