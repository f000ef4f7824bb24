export * from "./envelope.ts";
export * from "./keys.ts";
