/**
 * veil on three hosts that are really apart (network namespaces, test/support/hosts.ts), set
 * up as the README's "Three machines" says: on each host a nats-server from `veil broker
 * config --cluster ... --node i`, a server (and on two of them a storage node) from `veil node`, every process
 * naming all three brokers; users' machines on the hosts with nothing but the brokers'
 * addresses. Then one host's cable is cut: the other two go on serving (downloads, uploads,
 * health says who is gone), and when it is plugged back in, the cluster is whole again.
 */
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bytesToHex } from "@noble/hashes/utils.js";
import { type NatsServerProcess, startNatsServer } from "../../infra/nats/server-process.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { makeTopology, type TestTopology } from "../support/hosts.ts";
import { type Ran, type RunningVeil, runVeil, startVeil } from "../support/cli.ts";

let topology: TestTopology;
let folder = "";
const brokers: NatsServerProcess[] = [];
const nodes: RunningVeil[] = [];
let brokerList = "";
const clusterKey = bytesToHex(cryptoRandom.bytes(32));
const password = "three hosts, one vault, a long password";

/** The data folder of host `index` (1-based): its broker's store, its nodes' chunks, a copy of `broker/`. */
const dataOf = (index: number) => join(folder, `host-${index}`);
const netnsOf = (index: number) => topology.hosts[index - 1]!.netns;
/** What the operator's tools on host `index` need. */
const operatorEnv = (index: number) => ({ NATS_URL: brokerList, VEIL_DATA: dataOf(index), VEIL_LOG: "warn" });
/** A user's machine on host `index`: the brokers' addresses and nothing else (no identities). */
const userEnv = (index: number) => ({
  NATS_URL: brokerList,
  VEIL_DATA: join(folder, `user-${index}`),
  VEIL_HOME: join(folder, `user-${index}`, "home"),
});

async function on(index: number, args: string[], env: Record<string, string>, stdin?: string): Promise<Ran> {
  return await runVeil(args, {
    netns: netnsOf(index),
    env,
    timeoutMs: 60_000,
    ...(stdin === undefined ? {} : { stdin: new TextEncoder().encode(stdin) }),
  });
}

/**
 * Runs a user's command until it succeeds, at most `tries` times: until the brokers and clients
 * have found a host gone (pings 2 s apart, 3 missed) and the streams have new leaders, a
 * command may fail, but only with a clear, retryable error (status 6), never anything worse.
 */
async function retrying(what: string, attempt: () => Promise<Ran>, tries = 5): Promise<Ran> {
  return await until(what, attempt, (ran) => {
    if (ran.code !== 0) {
      expect(ran.code, ran.stderr).toBe(6);
      expect(ran.stderr).toMatch(/no reply on veil\.cmd\.|no veil server answers|retry/);
    }
    return ran.code === 0;
  }, tries);
}

/** Runs `attempt` until `done` holds of its result, with a bound; the last result is in the error. */
async function until(what: string, attempt: () => Promise<Ran>, done: (ran: Ran) => boolean, tries = 30) {
  let last: Ran | undefined;
  for (let round = 0; round < tries; round++) {
    last = await attempt();
    if (done(last)) return last;
  }
  throw new Error(`${what}: not after ${tries} tries; last:\n${last?.stdout}\n${last?.stderr}`);
}

const health = (index: number) => on(index, ["health", "--json"], operatorEnv(index));
const verdictOf = (ran: Ran) =>
  JSON.parse(ran.stdout) as {
    healthy: boolean;
    leader?: { node: string };
    alive: string[];
    streams: { name: string; replicas: number }[];
    problems: string[];
  };

beforeAll(async () => {
  topology = makeTopology(3);
  folder = await mkdtemp(join(tmpdir(), "veil-test-hosts-"));
  const seed = join(folder, "seed");
  const routes = topology.hosts.map((host) => `${host.address}:6222`).join(",");
  brokerList = topology.hosts.map((host) => `nats://${host.address}:4222`).join(",");
  // One data folder's broker identities and route password, copied to each host.
  const configs: string[] = [];
  for (const [index, host] of topology.hosts.entries()) {
    const store = join(dataOf(index + 1), "nats");
    const printed = await runVeil([
      "broker",
      "config",
      "--cluster",
      routes,
      "--node",
      String(index + 1),
      "--host",
      host.address,
      "--port",
      "4222",
      "--store",
      store,
    ], { env: { VEIL_DATA: seed } });
    expect(printed.code, printed.stderr).toBe(0);
    await mkdir(dataOf(index + 1), { recursive: true });
    await cp(join(seed, "broker"), join(dataOf(index + 1), "broker"), { recursive: true });
    const configFile = join(dataOf(index + 1), "veil.conf");
    await writeFile(configFile, printed.stdout, { mode: 0o600 });
    configs.push(configFile);
  }
  brokers.push(
    ...await Promise.all(configs.map((configFile, index) =>
      startNatsServer({
        configFile,
        storeFolder: join(dataOf(index + 1), "nats"),
        host: topology.hosts[index]!.address,
        port: 4222,
        runIn: ["ip", "netns", "exec", netnsOf(index + 1)],
      })
    )),
  );
  // A server on every host, storage nodes on hosts 2 and 3 (two replicas of every chunk).
  for (const index of [1, 2, 3]) {
    const roles = [["--role", "server", "--id", `server-${index}`]];
    if (index > 1) roles.push(["--role", "storage", "--id", `storage-${index}`]);
    for (const args of roles) {
      const node = startVeil(["node", ...args, "--capacity", "1GB"], {
        netns: netnsOf(index),
        env: { ...operatorEnv(index), VEIL_CLUSTER_KEY: clusterKey, VEIL_REPAIR_GRACE_MS: "600000" },
      });
      nodes.push(node);
    }
  }
  await Promise.all(nodes.map((node) => node.waitForOutput(/Press Ctrl-C to stop/, 90_000)));
}, 180_000);

afterAll(async () => {
  for (const node of nodes) node.child.kill("SIGTERM");
  await Promise.all(nodes.map((node) => node.exited));
  await Promise.all(brokers.map((broker) => broker.stop()));
  topology?.remove();
  if (folder) await rm(folder, { recursive: true, force: true });
}, 60_000);

describe("veil on three hosts", () => {
  it("forms one cluster over the three, its log on three replicas, healthy from every host", async () => {
    for (const index of [1, 2, 3]) {
      const verdict = verdictOf(
        await until(`healthy from host ${index}`, () => health(index), (ran) => ran.code === 0),
      );
      expect(verdict.leader?.node).toBe("server-3");
      expect([...verdict.alive].sort()).toEqual(
        ["server-1", "server-2", "server-3", "storage-2", "storage-3"],
      );
      expect(verdict.streams.map((stream) => stream.replicas)).toEqual([3, 3, 3, 3]);
    }
  }, 120_000);

  it("keeps serving users on the other two while one host is cut off, and is whole again when it is back", async () => {
    const photo = join(folder, "photo.bin");
    const bytes = cryptoRandom.bytes(600_000);
    await writeFile(photo, bytes);
    const registered = await on(3, ["register", "alice", "--password-stdin"], userEnv(3), password + "\n");
    expect(registered.stdout, registered.stderr).toMatch(/logged in as alice/);
    const uploaded = await on(3, ["upload", photo, "--json"], userEnv(3));
    expect(uploaded.code, uploaded.stderr).toBe(0);
    const stored = JSON.parse(uploaded.stdout) as { image: string };

    // Host 1 goes dark: a broker node and a server with it.
    topology.cut(0);
    const cutOff = verdictOf(
      await until("host 1's nodes reported gone", () => health(2), (ran) => {
        const verdict = ran.stdout ? verdictOf(ran) : undefined;
        // The two left see each other again (a node whose broker was host 1's has moved to another).
        // ...and the log's replica on host 1 is reported offline.
        return verdict !== undefined && verdict.leader !== undefined &&
          [...verdict.alive].sort().join() === "server-2,server-3,storage-2,storage-3" &&
          verdict.problems.some((problem) => /broker-1/.test(problem));
      }),
    );
    expect(cutOff.healthy).toBe(false);
    expect(cutOff.problems.join("\n")).toMatch(/broker-1/);

    // A user on host 2 logs in and reads the file; one on host 3 stores another.
    const loggedIn = await retrying(
      "a login on host 2",
      () => on(2, ["login", "alice", "--password-stdin"], userEnv(2), password + "\n"),
    );
    expect(loggedIn.stdout).toMatch(/logged in as alice/);
    const copy = join(folder, "copy.bin");
    await retrying("a download on host 2", () => on(2, ["download", stored.image, "-o", copy, "--force"], userEnv(2)));
    expect(Buffer.compare(await readFile(copy), bytes)).toBe(0);
    const second = join(folder, "second.bin");
    const secondBytes = cryptoRandom.bytes(300_000);
    await writeFile(second, secondBytes);
    const more = await retrying("an upload on host 3", () => on(3, ["upload", second, "--json"], userEnv(3)));
    const secondStored = JSON.parse(more.stdout) as { image: string };

    // Plugged back in: every node rejoins, every replica catches up.
    topology.heal(0);
    const whole = verdictOf(
      await until("whole again", () => health(1), (ran) => ran.code === 0 && verdictOf(ran).alive.length === 5, 60),
    );
    expect(whole.problems).toEqual([]);
    const onHostOne = await retrying(
      "a login on host 1",
      () => on(1, ["login", "alice", "--password-stdin"], userEnv(1), password + "\n"),
    );
    expect(onHostOne.stdout).toMatch(/logged in as alice/);
    const back = join(folder, "back.bin");
    await retrying(
      "a download on host 1",
      () => on(1, ["download", secondStored.image, "-o", back, "--force"], userEnv(1)),
    );
    expect(Buffer.compare(await readFile(back), secondBytes)).toBe(0);
    // No process gave up on the way: cut off or not, each rode it out.
    expect(nodes.map((node) => node.child.exitCode)).toEqual(nodes.map(() => null));
  }, 300_000);
});
