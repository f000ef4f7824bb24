/**
 * The wire protocol between veil's processes (heartbeats and elections in cluster.ts, chunk
 * requests in store.ts), shared by servers, storage nodes, clients and
 * the browser: the subjects commands and chunk requests travel on, and the reply envelope
 * every one of them answers with. Replies are msgpack `{ok: true, value}` or `{ok: false,
 * error: {code, message}}`; a reply is checked before anything trusts it.
 */
import { type ErrorCode, errorFromCode, UnavailableError, VeilError } from "../errors.ts";
import { object, string } from "../schema.ts";
import { subjectToken } from "../subjects.ts";

export type CommandReply =
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: { readonly code: ErrorCode; readonly message: string } };

/** The queue group every server serves `veil.cmd.>` in, so NATS spreads the commands. */
export const commandQueue = "veil-servers";
/** The queue group of `veil.lead.>`: only the leader subscribes to it. */
export const leaderCommandQueue = "veil-leader";
export const commandSubjectsAll = "veil.cmd.>";
export const leaderCommandSubjectsAll = "veil.lead.>";
/** The one command sent in the clear: how a client learns the key the others are sealed to. */
export const clusterKeysCommand = "cluster.keys";

/** A command's name is dotted (`user.login`): each part is a subject token. */
const commandName = (name: string) => name.split(".").map((part) => subjectToken(part, "command name")).join(".");
export const commandSubject = (name: string) => `veil.cmd.${commandName(name)}`;
export const leaderCommandSubject = (name: string) => `veil.lead.${commandName(name)}`;

/** The reply for a failure: a typed error keeps its code; anything else is the server's own failure. */
export function failureReply(error: unknown): CommandReply {
  if (error instanceof VeilError) return { ok: false, error: { code: error.code, message: error.message } };
  return { ok: false, error: { code: "unavailable", message: `the server failed: ${(error as Error).message}` } };
}

const failure = object({ code: string({ lengthMin: 1, lengthMax: 64 }), message: string({ lengthMax: 4_096 }) });

/** A reply as it came off the wire: its value, or its typed error thrown. */
export function readReply(reply: unknown, subject: string): unknown {
  const typed = reply as Partial<CommandReply> | null;
  if (typed?.ok === true) return typed.value;
  let error: { code: string; message: string } | undefined;
  try {
    if (typed?.ok === false) error = failure.parse(typed.error);
  } catch {
    // Falls through to the malformed-reply error below.
  }
  if (error) throw errorFromCode(error.code as ErrorCode, error.message);
  throw new UnavailableError(`${subject} answered with a malformed reply`);
}

export * from "./accounts.ts";
export * from "./cluster.ts";
export * from "./sharing.ts";
export * from "./store.ts";
export * from "./vault.ts";
