/**
 * The folder rule of DESIGN section 2, kept by a check: the dependency direction `events` <-
 * `projections` <- `actors` <- `infra` is never broken; the actor side reaches time, timers
 * and randomness only through its ports, so the simulator can drive it; and a file sits in
 * `infra/` only if it touches the world or is the CLI, the launcher or the worker threads.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";
import { describe, expect, it } from "vitest";

const root = normalize(join(dirname(fileURLToPath(import.meta.url)), "../.."));
const layers = ["events", "projections", "actors", "infra"] as const;
type Layer = (typeof layers)[number];

const sources = layers.flatMap((layer) =>
  (readdirSync(join(root, layer), { recursive: true }) as string[])
    .filter((file) => file.endsWith(".ts"))
    .map((file) => join(layer, file))
);
const text = (file: string) => readFileSync(join(root, file), "utf8");

/**
 * What a file imports (static, dynamic, re-exports, type-only, and worker scripts named by
 * `new URL(..., import.meta.url)`): relative paths resolved from the repository's root,
 * packages as named. Read from the source as written, comments included: a comment that
 * names an import can only make the check stricter.
 */
function importsOf(file: string): string[] {
  const source = text(file);
  const specifiers = [
    ...source.matchAll(/(?:from|import)\s*\(?\s*["'`]([^"'`]+)["'`]/g),
    ...source.matchAll(/new URL\(\s*["'`]([^"'`]+)["'`]/g),
  ].map(([, specifier]) => specifier!);
  return specifiers.map((specifier) =>
    specifier.startsWith(".") ? relative(root, join(root, dirname(file), specifier)) : specifier
  );
}

const layerOf = (path: string) => layers.find((layer) => path.startsWith(`${layer}/`));

/** The platform, reached only in infra/ (and in the exception below, with its reason). */
const world =
  /^(?:npm:|jsr:)?(?:node:|@nats-io\/|nodemailer|commander|(?:fs|path|os|crypto|child_process|worker_threads|net|http|https|zlib|util|buffer|process)(?:\/|$))/;

/**
 * The world's clock, timers, randomness and runtime a file reaches by itself. Looked for in
 * the file as esbuild emits it (types and comments gone), so a declaration such as the
 * Timers port's `setTimeout(callback, ms)` or a comment that names `Date.now` is no call.
 */
const worldCalls =
  /(?:(?<![\w.$])|globalThis\.)(?:setTimeout|setInterval|clearTimeout|clearInterval|setImmediate)\s*\(|\b(?:Date|performance)\.now\s*\(|\bMath\.random\s*\(|\bcrypto\.(?:getRandomValues|randomUUID)\s*\(|\bnew Date\(\s*\)|\bDeno\./g;
const worldCallsOf = (file: string) =>
  [...transformSync(text(file), { loader: "ts" }).code.matchAll(worldCalls)].map(([call]) => call);

/**
 * A known exception, waiting for a change of its own (the list only shrinks): actors/stego/png.ts
 * inflates and deflates with node:zlib; a deflate port comes with the browser app, which
 * needs one anyway.
 */
const actorSideWorld = new Set(["actors/stego/png.ts"]);
/** The system's clock, timers and randomness: a file that binds them to the actor side touches the world. */
const systemWorld = new Set(["infra/clock.ts", "infra/random.ts"]);
/** infra/ folders that are infra by what they are, not by what they import. */
const infraByRole = ["infra/cli/", "infra/launcher/", "infra/workers/"];

describe("the folder rule", () => {
  it("keeps the dependency direction: events <- projections <- actors <- infra", () => {
    const broken: string[] = [];
    for (const file of sources) {
      const own = layers.indexOf(layerOf(file)!);
      for (const target of importsOf(file)) {
        const layer = layerOf(target) as Layer | undefined;
        if (layer && layers.indexOf(layer) > own) broken.push(`${file} imports ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("gives the actor side no clock, timer, randomness or platform but through its ports", () => {
    const reached: string[] = [];
    for (const file of sources.filter((file) => layerOf(file) !== "infra")) {
      for (const call of worldCallsOf(file)) reached.push(`${file} calls ${call}`);
      if (actorSideWorld.has(file)) continue;
      for (const target of importsOf(file).filter((target) => world.test(target))) {
        reached.push(`${file} imports ${target}`);
      }
    }
    expect(reached).toEqual([]);
  });

  it("keeps in infra/ only what touches the world, or is the CLI, the launcher or the workers", () => {
    const misplaced = sources.filter((file) =>
      layerOf(file) === "infra" &&
      !infraByRole.some((folder) => file.startsWith(folder)) &&
      !file.endsWith("/mod.ts") &&
      !importsOf(file).some((target) => world.test(target) || systemWorld.has(target)) &&
      worldCallsOf(file).length === 0
    );
    expect(misplaced).toEqual([]);
  });

  it("lists only an exception that still needs to be", () => {
    for (const file of actorSideWorld) expect(importsOf(file).some((target) => world.test(target)), file).toBe(true);
  });
});
