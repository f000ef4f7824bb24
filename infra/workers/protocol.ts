/** What crosses between a pool and its workers, and how typed errors survive the crossing. */
import { type ErrorCode, VeilError } from "../../events/mod.ts";

export interface TaskMessage {
  readonly id: number;
  readonly operation: string;
  readonly input: unknown;
}

export type ResultMessage =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | {
    readonly id: number;
    readonly ok: false;
    readonly error: { readonly name: string; readonly code?: ErrorCode; readonly message: string };
  };

export function errorToMessage(error: unknown): Extract<ResultMessage, { ok: false }>["error"] {
  const failure = error as Error;
  return {
    name: failure.name ?? "Error",
    code: error instanceof VeilError ? error.code : undefined,
    message: failure.message ?? String(error),
  };
}

export function errorFromMessage(error: Extract<ResultMessage, { ok: false }>["error"]): Error {
  if (error.code) {
    const typed = new VeilError(error.code, error.message);
    typed.name = error.name;
    return typed;
  }
  return new Error(`a worker failed: ${error.message}`);
}
