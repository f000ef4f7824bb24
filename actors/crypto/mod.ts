export * from "./envelope.ts";
export * from "./keys.ts";
export * from "./digest.ts";
export * from "./box.ts";
export * from "./sealed-command.ts";
export * from "./signatures.ts";
