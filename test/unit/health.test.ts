import { describe, expect, it } from "vitest";
import {
  defaultHeartbeatTimeouts,
  emptyHealth,
  forgetLongGone,
  isAlive,
  type ObservedHeartbeat,
  observeHeartbeat,
} from "../../projections/mod.ts";

const beat = (node: string, role: ObservedHeartbeat["role"] = "server"): ObservedHeartbeat => ({
  node,
  role,
  state: "follower",
  term: 1,
  inFlight: 0,
  memoryBytes: 1,
  sentAt: 0,
});

describe("health view", () => {
  it("keeps each node's latest heartbeat and when it arrived", () => {
    let state = observeHeartbeat(emptyHealth(), beat("s1"), 1_000);
    state = observeHeartbeat(state, { ...beat("s1"), state: "leader", term: 2, sentAt: 1 }, 2_000);
    expect(state.nodes.s1).toMatchObject({ state: "leader", term: 2, lastSeenAt: 2_000 });
  });

  it("ignores a replayed or duplicated heartbeat (not newer than the last one sent)", () => {
    let state = observeHeartbeat(emptyHealth(), { ...beat("s1"), sentAt: 50, state: "leader" }, 1_000);
    state = observeHeartbeat(state, { ...beat("s1"), sentAt: 40, state: "follower" }, 9_000);
    state = observeHeartbeat(state, { ...beat("s1"), sentAt: 50, state: "follower" }, 9_000);
    expect(state.nodes.s1).toMatchObject({ state: "leader", lastSeenAt: 1_000 });
  });

  it("judges liveness per role with the configured timeouts", () => {
    const state = observeHeartbeat(observeHeartbeat(emptyHealth(), beat("s1"), 0), beat("p1", "peer"), 0);
    expect(isAlive(state.nodes.s1!, 3_000, defaultHeartbeatTimeouts)).toBe(true);
    expect(isAlive(state.nodes.s1!, 3_001, defaultHeartbeatTimeouts)).toBe(false);
    expect(isAlive(state.nodes.p1!, 9_000, defaultHeartbeatTimeouts)).toBe(true);
    expect(isAlive(state.nodes.s1!, 3_001, { ...defaultHeartbeatTimeouts, server: 5_000 })).toBe(true);
  });

  it("forgets nodes silent for ten timeouts", () => {
    const state = observeHeartbeat(emptyHealth(), beat("s1"), 0);
    expect(forgetLongGone(state, 30_000, defaultHeartbeatTimeouts).nodes.s1).toBeDefined();
    expect(forgetLongGone(state, 30_001, defaultHeartbeatTimeouts).nodes.s1).toBeUndefined();
  });
});
