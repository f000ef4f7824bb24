export * from "./cover.ts";
export * from "./embed.ts";
export * from "./png.ts";
export * from "./preview.ts";
export * from "./quality.ts";
