/** Entry point of the `veil` command: `deno run -A infra/cli/veil.ts` or `tsx infra/cli/veil.ts`. */
import process from "node:process";
import { main } from "./main.ts";

process.exit(await main(process.argv.slice(2)));
