/**
 * Hosts that are really apart, on one machine: each a Linux network namespace with its own
 * interface and address, wired by veth pairs to a bridge in a namespace of its own (the
 * switch). Nothing is added to the machine's own namespace, so the topology cannot reach or
 * disturb anything else (the open nats-server on 127.0.0.1:4222 included). Addresses come
 * from 10.249.0.0/16 (a private range), a /24 per run, so two runs never share one. Cutting
 * a host's cable (its switch port down) is a network partition: its processes go on running,
 * unreachable. Made and removed by the test itself (root and iproute2 needed).
 */
import { execFileSync } from "node:child_process";
import process from "node:process";

export interface TestHost {
  /** Its network namespace: run a process in it with `ip netns exec <netns> ...`. */
  readonly netns: string;
  readonly address: string;
}

export interface TestTopology {
  readonly hosts: readonly TestHost[];
  /** Unplugs host `index`'s cable: nothing reaches it and it reaches nothing. */
  cut(index: number): void;
  /** Plugs it back in. */
  heal(index: number): void;
  /** Removes every namespace (their interfaces go with them). */
  remove(): void;
}

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });

export function makeTopology(count: number): TestTopology {
  if (process.getuid?.() !== 0) {
    throw new Error("the host topology needs root (network namespaces); run the tests as root, as CI does");
  }
  // A tag of the process id keeps concurrent runs' names and subnets apart.
  const tag = String(process.pid % 10_000);
  const subnet = `10.249.${process.pid % 250}`;
  const switchNs = `veil-sw-${tag}`;
  const hosts = Array.from({ length: count }, (_, index) => ({
    netns: `veil-h${index + 1}-${tag}`,
    address: `${subnet}.${index + 1}`,
  }));
  const port = (index: number) => `p${index + 1}`;
  const remove = () => {
    for (const name of [...hosts.map((host) => host.netns), switchNs]) {
      try {
        ip("netns", "del", name);
      } catch {
        // Not made (a run cut short), or gone already.
      }
    }
  };
  remove();
  try {
    ip("netns", "add", switchNs);
    ip("-n", switchNs, "link", "add", "br0", "type", "bridge");
    ip("-n", switchNs, "link", "set", "br0", "up");
    hosts.forEach((host, index) => {
      ip("netns", "add", host.netns);
      ip("-n", host.netns, "link", "set", "lo", "up");
      ip("-n", host.netns, "link", "add", "eth0", "type", "veth", "peer", "name", port(index), "netns", switchNs);
      ip("-n", host.netns, "addr", "add", `${host.address}/24`, "dev", "eth0");
      ip("-n", host.netns, "link", "set", "eth0", "up");
      ip("-n", switchNs, "link", "set", port(index), "master", "br0");
      ip("-n", switchNs, "link", "set", port(index), "up");
    });
  } catch (error) {
    remove();
    throw new Error(`could not make the test hosts: ${(error as { stderr?: string }).stderr ?? error}`);
  }
  process.once("exit", remove);
  return {
    hosts,
    cut: (index) => void ip("-n", switchNs, "link", "set", port(index), "down"),
    heal: (index) => void ip("-n", switchNs, "link", "set", port(index), "up"),
    remove() {
      process.removeListener("exit", remove);
      remove();
    },
  };
}
