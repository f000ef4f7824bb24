/** Human renderings of projection states for `veil state`; any projection without one is shown as JSON. */
import type { ClusterState } from "../../projections/mod.ts";
import { toJson } from "./format.ts";

const iso = (ms: number) => new Date(ms).toISOString();

export function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  return rows.map((row) => row.map((cell, column) => cell.padEnd(widths[column]!)).join("  ").trimEnd());
}

const renderers: Record<string, (state: never) => string[]> = {
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

export function renderState(name: string, state: unknown): string[] {
  const render = renderers[name] as ((state: unknown) => string[]) | undefined;
  return render ? render(state) : toJson(state, 2).split("\n");
}
