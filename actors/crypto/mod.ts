export * from "./envelope.ts";
export * from "./keys.ts";
export * from "./digest.ts";
