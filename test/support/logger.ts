/** Loggers for tests: one that keeps warnings to assert on, one that says nothing. */
import type { Logger } from "../../actors/ports.ts";

export function recordingLogger(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger: Logger = { debug() {}, info() {}, warn: (message) => void warnings.push(message), error() {} };
  return { logger, warnings };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
