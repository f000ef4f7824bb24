/**
 * The folder rule of DESIGN section 2, kept by a check: the dependency direction `events` <-
 * `projections` <- `actors` <- `infra` is never broken; the actor side reaches time, timers
 * and randomness only through its ports, so the simulator can drive it; and a file sits in
 * `infra/` only if it touches the world or is the CLI, the launcher or the worker threads.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
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
/** What a file imports: relative paths resolved from the repository's root, packages as named. */
const importsOf = (file: string) =>
  [...text(file).matchAll(/(?:from|import)\s*\(?\s*"([^"]+)"/g)].map(([, specifier]) =>
    specifier!.startsWith(".") ? relative(root, join(root, dirname(file), specifier!)) : specifier!
  );
const layerOf = (path: string) => layers.find((layer) => path.startsWith(`${layer}/`));
/** Code without its comments, so a comment that names `Date.now` is not a call. */
const code = (file: string) => text(file).replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");

/** The platform, reached only in infra/ (and in the exceptions below, each with its reason). A
 * declaration such as the Timers port's `setTimeout(callback: ...)` is not a call. */
const world = /^(node:|@nats-io\/|nodemailer|commander)/;
const worldGlobals =
  /(?<![.\w])(?:setTimeout|setInterval|clearTimeout|clearInterval)\s*\((?!\s*\w+\??:)|\bDate\.now\(|\bperformance\.now\(|\bMath\.random\(|\bcrypto\.(?:getRandomValues|randomUUID)\(|\bDeno\./;

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
      const call = code(file).match(worldGlobals);
      if (call) reached.push(`${file} calls ${call[0]}`);
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
      !worldGlobals.test(code(file))
    );
    expect(misplaced).toEqual([]);
  });

  it("lists only an exception that still needs to be", () => {
    for (const file of actorSideWorld) expect(importsOf(file).some((target) => world.test(target)), file).toBe(true);
  });
});
