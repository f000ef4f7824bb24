export * from "./cluster.ts";
export * from "./codec.ts";
export * from "./envelope.ts";
export * from "./errors.ts";
export * from "./limits.ts";
export * from "./schema.ts";
export * from "./subjects.ts";
export * from "./vocabulary.ts";
