/** Hosts a user's peer on this machine: the peer of actors/peer/host.ts, on the bus's command client and the system's timers. */
import { type HostedPeer, type PeerDeps, startPeer } from "../../actors/peer/host.ts";
import { systemTimers } from "../clock.ts";
import { commandsOver } from "../command-client.ts";

export type { HostedPeer, Note } from "../../actors/peer/host.ts";

export function hostPeer(deps: Omit<PeerDeps, "send" | "timers"> & Partial<PeerDeps>): HostedPeer {
  return startPeer({ send: commandsOver(deps.bus), timers: systemTimers, ...deps });
}
