/**
 * Vitest global setup: one Deno run of the CLI, with a worker, before any test starts. In a
 * fresh checkout Deno's first runs set up their caches; several first runs at once (test
 * files run in parallel) were seen to stall one of them past its bound.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodePng, generateCover } from "../../actors/stego/mod.ts";
import { veilCommand } from "./cli.ts";

export default async function warmDeno(): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), "veil-warm-deno-"));
  try {
    const cover = join(folder, "cover.png");
    writeFileSync(cover, await encodePng(generateCover(1, 64, 64)));
    const [command, prefix] = veilCommand("deno");
    const ran = spawnSync(command, [...prefix, "stego", "capacity", cover], { timeout: 120_000, encoding: "utf8" });
    if (ran.status !== 0) throw new Error(`Deno could not run the CLI: ${ran.stderr || ran.error?.message}`);
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
