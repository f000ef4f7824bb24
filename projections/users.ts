/**
 * Accounts as the log records them: one state per user (credentials, open sessions, known
 * devices, second factors, failed logins) and, across users, failed logins per client
 * address. The per-user state is also the account decider's state, so what a server
 * decides against is exactly what `veil state users --at` shows.
 */
import { bytesToHex } from "@noble/hashes/utils.js";
import {
  limits,
  type LoginLane,
  type SecondFactor,
  type UserEvent,
  userEvents,
  type VeilEvent,
} from "../events/mod.ts";
import type { Projection } from "./projection.ts";

export interface Credentials {
  readonly passwordSalt: Uint8Array;
  readonly passwordKdf: { readonly N: number; readonly r: number; readonly p: number };
  readonly verifier: Uint8Array;
  readonly verifierSalt: Uint8Array;
  readonly verifierKdf: { readonly N: number; readonly r: number; readonly p: number };
  readonly accountKeyWrapped: Uint8Array;
  readonly privateKeyWrapped: Uint8Array;
}

export interface SessionRecord {
  readonly session: string;
  /** Hex SHA-256 of the token. */
  readonly tokenHash: string;
  readonly startedAt: number;
  readonly expiresAt: number;
  /** Where it came from, sealed with the cluster key: only servers open it, for the session's owner. */
  readonly deviceSealed?: Uint8Array;
  readonly addressSealed?: Uint8Array;
  /** Sessions started before those were sealed (v1 events) have them in the clear. */
  readonly deviceName?: string;
  readonly address?: string;
  readonly secondFactor: SecondFactor;
}

/** Failed attempts in a row, in one lane of an account (or for a name nobody holds). */
export interface FailureCount {
  readonly failures: number;
  readonly lastFailureAt: number | null;
  readonly lockedUntil: number | null;
}

const noFailures: FailureCount = { failures: 0, lastFailureAt: null, lockedUntil: null };

export interface UserState {
  readonly user: string;
  readonly status: "active" | "deleted";
  readonly registeredAt: number;
  readonly credentials: Credentials;
  readonly publicKey: Uint8Array;
  readonly emailSealed?: Uint8Array;
  /** Open sessions by id (an expired one stays until it is pushed out or ended). */
  readonly sessions: Readonly<Record<string, SessionRecord>>;
  /** Hex hashes of the devices this user logged in from, oldest first. */
  readonly devices: readonly string[];
  readonly lastLoginAt: number | null;
  /** The login before the last one: what "last login" means to the person who just logged in. */
  readonly previousLoginAt: number | null;
  /** Failed attempts in each lane since that lane's last success (see `loginLanes`). */
  readonly lanes: Readonly<Record<LoginLane, FailureCount>>;
  readonly totp: {
    readonly secretSealed: Uint8Array;
    /** The last step accepted: no code of this step or an earlier one is accepted again. */
    readonly lastStep: number;
    /** Keyed hashes of the backup codes; a spent one is null. */
    readonly backupCodeHashes: readonly (Uint8Array | null)[];
  } | null;
  readonly emailCode: { readonly codeHash: Uint8Array; readonly expiresAt: number } | null;
}

export interface AddressFailures {
  readonly failures: number;
  readonly lastFailureAt: number;
}

export interface UsersState {
  readonly users: Readonly<Record<string, UserState>>;
  readonly addresses: Readonly<Record<string, AddressFailures>>;
}

export function isUserEvent(event: VeilEvent): event is UserEvent {
  return Object.hasOwn(userEvents, event.type);
}

/** One user's state after one of its events; `undefined` before it registered. */
export function evolveUser(state: UserState | undefined, event: UserEvent): UserState | undefined {
  if (event.type === "UserRegistered") {
    if (state) return state;
    const { user, publicKey, emailSealed, ...credentials } = event.data;
    return {
      user,
      status: "active",
      registeredAt: event.at,
      credentials,
      publicKey,
      ...(emailSealed ? { emailSealed } : {}),
      sessions: {},
      devices: [],
      lastLoginAt: null,
      previousLoginAt: null,
      lanes: { open: noFailures, trusted: noFailures },
      totp: null,
      emailCode: null,
    };
  }
  if (!state) return state;
  switch (event.type) {
    case "PasswordChanged": {
      const { user: _user, keptSession, totpStep, backupCode, ...credentials } = event.data;
      const kept = Object.hasOwn(state.sessions, keptSession) ? state.sessions[keptSession] : undefined;
      return {
        ...state,
        credentials,
        sessions: kept ? { [keptSession]: kept } : {},
        totp: spendSecondFactor(state.totp, { totpStep, backupCode }),
      };
    }
    case "UserDeleted":
      return { ...state, status: "deleted", sessions: {}, totp: null, emailCode: null };
    case "SessionStarted": {
      const data = event.data;
      const session: SessionRecord = {
        session: data.session,
        tokenHash: bytesToHex(data.tokenHash),
        startedAt: event.at,
        expiresAt: data.expiresAt,
        ...(data.deviceSealed ? { deviceSealed: data.deviceSealed } : {}),
        ...(data.addressSealed ? { addressSealed: data.addressSealed } : {}),
        ...(data.deviceName !== undefined ? { deviceName: data.deviceName } : {}),
        ...(data.address ? { address: data.address } : {}),
        secondFactor: data.secondFactor,
      };
      const device = bytesToHex(data.deviceHash);
      // A success clears its own lane only: the user's own device logging in does not let a stranger guess on.
      const lane = loginLaneOf(state, device);
      const devices = [...state.devices.filter((known) => known !== device), device].slice(-limits.devicesPerUserMax);
      const totp = spendSecondFactor(state.totp, data);
      return {
        ...state,
        sessions: withinSessionBound({ ...state.sessions, [data.session]: session }),
        devices,
        lastLoginAt: event.at,
        previousLoginAt: state.lastLoginAt,
        lanes: { ...state.lanes, [lane]: noFailures },
        totp,
        emailCode: data.secondFactor === "email" ? null : state.emailCode,
      };
    }
    case "SessionEnded": {
      const { [event.data.session]: _ended, ...sessions } = state.sessions;
      return { ...state, sessions };
    }
    case "SessionsEnded": {
      const except = event.data.except;
      const kept = except !== undefined && Object.hasOwn(state.sessions, except) ? state.sessions[except] : undefined;
      return { ...state, sessions: kept && except ? { [except]: kept } : {} };
    }
    case "LoginFailed": {
      // A lock that has run out starts the count afresh (as the decider counts, from event time).
      const count = state.lanes[event.data.lane];
      const lapsed = count.lockedUntil !== null && count.lockedUntil <= event.at;
      const next = {
        failures: (lapsed ? 0 : count.failures) + 1,
        lastFailureAt: event.at,
        lockedUntil: lapsed ? null : count.lockedUntil,
      };
      return { ...state, lanes: { ...state.lanes, [event.data.lane]: next } };
    }
    case "AccountLocked": {
      // The failure that reached the bound is recorded by the lock itself (one event per decision).
      const next = { failures: event.data.failures, lastFailureAt: event.at, lockedUntil: event.data.until };
      return { ...state, lanes: { ...state.lanes, [event.data.lane]: next } };
    }
    case "TotpEnabled":
      return {
        ...state,
        totp: {
          secretSealed: event.data.secretSealed,
          lastStep: event.data.step,
          backupCodeHashes: event.data.backupCodeHashes,
        },
        emailCode: null,
      };
    case "TotpDisabled":
      return { ...state, totp: null };
    case "EmailCodeIssued":
      return { ...state, emailCode: { codeHash: event.data.codeHash, expiresAt: event.data.expiresAt } };
    case "NotificationSent":
      return state;
    default:
      return assertNever(event);
  }
}

/** Beyond the bound, the session that started first goes. */
function withinSessionBound(sessions: Record<string, SessionRecord>): Record<string, SessionRecord> {
  const all = Object.values(sessions);
  if (all.length <= limits.sessionsPerUserMax) return sessions;
  const oldest = all.reduce((first, session) => (session.startedAt < first.startedAt ? session : first));
  const { [oldest.session]: _dropped, ...rest } = sessions;
  return rest;
}

/**
 * Failures per client address, across users, by the address's keyed hash in hex (or, for
 * v1 events, by the address itself: see `addressFailureKey`). A success does not clear them
 * (an attacker could log into an account of their own to reset the count); they lapse once
 * the address has been quiet for a lock period.
 */
function evolveAddresses(
  addresses: UsersState["addresses"],
  event: UserEvent,
): UsersState["addresses"] {
  if (event.type !== "LoginFailed" && event.type !== "AccountLocked") return addresses;
  const address = addressFailureKey(event.data);
  if (!address) return addresses;
  const previous = Object.hasOwn(addresses, address) ? addresses[address] : undefined;
  const recent = previous && event.at - previous.lastFailureAt < limits.accountLockMs;
  const next = { ...addresses, [address]: { failures: (recent ? previous.failures : 0) + 1, lastFailureAt: event.at } };
  const tracked = Object.keys(next);
  if (tracked.length <= limits.loginAddressesTrackedMax) return next;
  const stalest = tracked.reduce((a, b) => (next[b]!.lastFailureAt < next[a]!.lastFailureAt ? b : a));
  const { [stalest]: _forgotten, ...rest } = next;
  return rest;
}

/** The key of an address's failures: its keyed hash in hex, or a v1 event's address as it was. */
export function addressFailureKey(data: { addressHash?: Uint8Array; address?: string }): string | undefined {
  return data.addressHash ? bytesToHex(data.addressHash) : data.address;
}

/** The lane a login from this device (hex of its hash) counts in: trusted once the account logged in from it. */
export function loginLaneOf(state: UserState, deviceHashHex: string): LoginLane {
  return state.devices.includes(deviceHashHex) ? "trusted" : "open";
}

/** A user's state; own keys only, so a name like "constructor" is a name and nothing else. */
export function userOf(state: UsersState, user: string): UserState | undefined {
  return Object.hasOwn(state.users, user) ? state.users[user] : undefined;
}

export const usersProjection: Projection<UsersState> = {
  name: "users",
  description: "accounts: credentials (hashes and wrapped keys only), sessions, second factors, failed logins",
  // 2: failures counted in lanes.
  version: 2,
  initial: () => ({ users: {}, addresses: {} }),
  evolve(state, event) {
    if (!isUserEvent(event)) return state;
    const before = userOf(state, event.data.user);
    const user = evolveUser(before, event);
    const addresses = evolveAddresses(state.addresses, event);
    if (user === before && addresses === state.addresses) return state;
    return { users: user ? { ...state.users, [event.data.user]: user } : state.users, addresses };
  },
};

function assertNever(event: never): never {
  throw new Error(`programmer error: unhandled user event ${(event as UserEvent).type}`);
}

/** A TOTP step or backup code, once used, is spent: the step and those before it, the code for good. */
function spendSecondFactor(
  totp: UserState["totp"],
  used: { readonly totpStep?: number; readonly backupCode?: number },
): UserState["totp"] {
  if (!totp) return totp;
  return {
    ...totp,
    lastStep: used.totpStep ?? totp.lastStep,
    backupCodeHashes: totp.backupCodeHashes.map((hash, index) => (index === used.backupCode ? null : hash)),
  };
}
