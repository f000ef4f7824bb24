/** Human renderings of projection states for `veil state`; any projection without one is shown as JSON. */
import { loginLanes } from "../../events/mod.ts";
import type { ClusterState, OutboxState, UsersState } from "../../projections/mod.ts";
import { toJson } from "./format.ts";

const iso = (ms: number) => new Date(ms).toISOString();

export function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
}

const renderers: Record<string, (state: never) => string[]> = {
  users: renderUsers,
  outbox: renderOutbox,
  cluster: (state: ClusterState) => {
    const leader = state.leader
      ? `leader: ${state.leader.node} (term ${state.leader.term}, since ${iso(state.leader.since)})`
      : `leader: none${state.term > 0 ? ` (last term ${state.term})` : ""}`;
    const nodes = Object.entries(state.nodes).sort(([a], [b]) => a.localeCompare(b));
    if (nodes.length === 0) return [leader, "nodes: none"];
    return [
      leader,
      ...table([
        ["NODE", "ROLE", "STATUS", "SINCE"],
        ...nodes.map(([id, node]) => [
          id,
          node.role,
          node.status + (node.leftReason ? ` (${node.leftReason})` : ""),
          iso(node.since),
        ]),
      ]),
    ];
  },
};

/** Accounts without their hashes and wrapped keys: who exists, their sessions and factors, their failures. */
function renderUsers(state: UsersState): string[] {
  const users = Object.values(state.users).sort((a, b) => a.user.localeCompare(b.user));
  if (users.length === 0) return ["users: none"];
  return table([
    ["USER", "STATUS", "REGISTERED", "SESSIONS", "LAST LOGIN", "SECOND FACTOR", "FAILURES", "LOCKED UNTIL"],
    ...users.map((user) => [
      user.user,
      user.status,
      iso(user.registeredAt),
      String(Object.keys(user.sessions).length),
      user.lastLoginAt === null ? "never" : iso(user.lastLoginAt),
      user.totp ? "totp" : user.emailSealed ? "email" : "none",
      loginLanes.map((lane) => `${lane} ${user.lanes[lane].failures}`).join(", "),
      loginLanes.filter((lane) => user.lanes[lane].lockedUntil !== null)
        .map((lane) => `${lane} ${iso(user.lanes[lane].lockedUntil!)}`).join(", "),
    ]),
  ]);
}

function renderOutbox(state: OutboxState): string[] {
  const pending = Object.values(state.pending).sort((a, b) => a.at - b.at);
  if (pending.length === 0) return ["outbox: empty"];
  return table([
    ["RAISED", "USER", "KIND", "BY EVENT"],
    ...pending.map((item) => [iso(item.at), item.user, item.kind, item.id]),
  ]);
}

export function renderState(name: string, state: unknown): string[] {
  const render = renderers[name] as ((state: unknown) => string[]) | undefined;
  return render ? render(state) : toJson(state, 2).split("\n");
}
