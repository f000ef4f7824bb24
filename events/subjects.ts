/**
 * Subject builders. Every subject veil uses is built here, and every token that ends up in
 * a subject is validated, so no wildcard or separator from user input can reach NATS.
 */
import { ValidationError } from "./errors.ts";
import { limits } from "./limits.ts";

export const eventSubjectPrefix = "veil.evt";
export const eventSubjectsAll = "veil.evt.>";
export const electionSubjectsAll = "veil.election.>";
export const heartbeatSubjectsAll = "veil.hb.>";

/** The aggregates that own events. */
export const aggregates = ["cluster", "node", "user", "image", "request", "grant"] as const;
export type Aggregate = (typeof aggregates)[number];

const tokenPattern = /^[A-Za-z0-9_-]+$/;

/** Checks one subject token: letters, digits, `_` and `-`, never `.`, `*`, `>` or space. */
export function subjectToken(token: string, what = "subject token"): string {
  if (token.length === 0 || token.length > limits.subjectTokenLengthMax || !tokenPattern.test(token)) {
    throw new ValidationError(
      `${what} ${JSON.stringify(token)} must be 1..${limits.subjectTokenLengthMax} of A-Z a-z 0-9 _ -`,
    );
  }
  return token;
}

export function eventSubject(aggregate: Aggregate, id: string): string {
  return `${eventSubjectPrefix}.${aggregate}.${subjectToken(id, `${aggregate} id`)}`;
}

export const leaderSubject = eventSubject("cluster", "leader");
export const clusterKeySubject = eventSubject("cluster", "key");

export function nodeSubject(nodeId: string): string {
  return eventSubject("node", nodeId);
}

export function userSubject(user: string): string {
  return eventSubject("user", user);
}

export function imageSubject(image: string): string {
  return eventSubject("image", image);
}

export function requestSubject(request: string): string {
  return eventSubject("request", request);
}

export function grantSubject(grant: string): string {
  return eventSubject("grant", grant);
}

/** Live notifications for one user's peer (new request, approval, denial, grant closed). */
export function notificationSubject(user: string): string {
  return `veil.note.${subjectToken(user, "user")}`;
}

/** What a user's running peer answers on: its discoverable images' previews. */
export function peerSubject(user: string, operation: "preview"): string {
  return `veil.peer.${subjectToken(user, "user")}.${operation}`;
}

/** NATS subject matching: `*` stands for one token, a final `>` for one or more. */
export function subjectMatches(pattern: string, subject: string): boolean {
  const wanted = pattern.split(".");
  const tokens = subject.split(".");
  for (let index = 0; index < wanted.length; index++) {
    if (wanted[index] === ">") return tokens.length > index;
    if (index >= tokens.length || (wanted[index] !== "*" && wanted[index] !== tokens[index])) return false;
  }
  return wanted.length === tokens.length;
}
