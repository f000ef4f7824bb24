/**
 * A user's latest state, and a caller's session, as the log has them now: the user's
 * subject's last sequence is read, and the users projection waited for until it has
 * applied it. So a logout or a revoke counts at once on every server, whatever its lag.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import type { Clock, EventLog } from "../../ports.ts";
import { requireSession } from "./decider.ts";
import { tokenHash } from "./secrets.ts";
import { limits, userSubject } from "../../../events/mod.ts";
import { userOf, type UsersState, type UserState } from "../../../projections/users.ts";
import type { Projector } from "../projector.ts";

export { authenticated } from "../../../events/mod.ts";

export function userSessions(deps: { log: EventLog; users: Projector<UsersState>; clock: Clock }) {
  const { log, users, clock } = deps;

  async function current(user: string): Promise<{ state: UserState | undefined; seq: number }> {
    const last = await log.readLast(userSubject(user));
    const seq = last?.seq ?? 0;
    await users.waitFor(seq, limits.commandTimeoutMs);
    return { state: userOf(users.state, user), seq };
  }

  /** The caller's open session, or the clear reason there is none. */
  async function session(request: { user: string; token: string }) {
    const { state, seq } = await current(request.user);
    const open = requireSession(state, bytesToHex(tokenHash(request.token)), clock.now());
    return { state: state!, seq, session: open };
  }

  return { current, session };
}
