/**
 * What client commands of a logged-in user share: the profile's stored session, a
 * connection, and calls to the servers with the bound account commands get (they may run a
 * memory-hard hash). A session the cluster no longer knows is forgotten.
 */
import { Option } from "commander";
import type { Bus } from "../../actors/ports.ts";
import { AuthenticationError, limits, type Schema, UnavailableError } from "../../events/mod.ts";
import { loadConfig } from "../config.ts";
import { sendCommand } from "../command-client.ts";
import { withConnection } from "./client.ts";
import { Profile, profileName, type StoredSession } from "./profile.ts";

export interface Session {
  readonly user: string;
  readonly token: string;
}

/**
 * Sends a command and checks its reply with `reply` (events/protocol), when the caller reads
 * it; "nobody serves it" becomes "start veil".
 */
export async function call<T = unknown>(bus: Bus, name: string, data: unknown, reply?: Schema<T>): Promise<T> {
  try {
    const value = await sendCommand(bus, name, data, { timeoutMs: limits.identityCommandTimeoutMs });
    return reply ? reply.parse(value) : value as T;
  } catch (error) {
    if (error instanceof UnavailableError && /nobody serves/.test(error.message)) {
      throw new UnavailableError("no veil server answers; start one with `veil up`", { cause: error });
    }
    throw error;
  }
}

export function profileOf(options: { profile?: string }): Profile {
  return new Profile(loadConfig().veilHome, profileName(options.profile));
}

export const profileOption = () =>
  new Option("--profile <name>", "which stored session to use (default: $VEIL_PROFILE or default)");
/** Runs work with a bus, the session of the profile, and this client's address as its connection reports it. */
export function withSession<T>(
  options: { profile?: string },
  work: (context: { bus: Bus; session: Session; profile: Profile; stored: StoredSession }) => Promise<T>,
): Promise<T> {
  const profile = profileOf(options);
  return withConnection(async ({ bus }) => {
    const stored = await profile.session();
    try {
      return await work({
        bus,
        session: { user: stored.user, token: stored.token },
        profile,
        stored,
      });
    } catch (error) {
      // A session the cluster no longer knows is of no use to keep.
      if (error instanceof AuthenticationError && /not logged in|expired/.test(error.message)) await profile.forget();
      throw error;
    }
  });
}
