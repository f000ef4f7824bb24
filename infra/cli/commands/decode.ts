import process from "node:process";
import type { Command } from "commander";
import { decodeEvent, decodeMessage, limits } from "../../../events/mod.ts";
import { toJson } from "../format.ts";

/** Reads stdin up to `bytesMax` (one byte more tells us it was too large). */
async function readStdin(bytesMax: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Uint8Array);
    total += (chunk as Uint8Array).byteLength;
    if (total > bytesMax) break;
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}

export function registerDecode(program: Command): void {
  program
    .command("decode")
    .description("decode one msgpack event from stdin and print it as JSON")
    .option("--raw", "print any msgpack value as JSON, even if it is not a valid veil event")
    .option("--pretty", "indent the JSON")
    .addHelpText("after", "\nWith the NATS CLI:  nats stream view VEIL_EVENTS --translate 'veil decode'")
    .action(async (options: { raw?: boolean; pretty?: boolean }) => {
      const bytes = await readStdin(limits.eventBytesMax + 1);
      const value = options.raw ? decodeMessage(bytes) : decodeEvent(bytes);
      process.stdout.write(toJson(value, options.pretty ? 2 : undefined) + "\n");
    });
}
