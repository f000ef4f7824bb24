import { execFileSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { afterEach, describe, expect, it } from "vitest";
import { nodeSubject, UnavailableError } from "../../events/mod.ts";
import { reachBroker } from "../../infra/launcher/broker.ts";
import { authenticatorFor, loadOrCreateIdentities } from "../../infra/nats/identities.ts";
import { connectNats, openJetStream } from "../../infra/nats/connection.ts";
import { NatsEventLog } from "../../infra/nats/event-log.ts";
import { startNatsServer } from "../../infra/nats/server-process.ts";
import { openSnapshotStore } from "../../infra/nats/snapshots.ts";
import { silentLogger } from "../support/logger.ts";
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";
import { signTicket, ticketKeys } from "../../actors/storage-node/tickets.ts";
import { parseClusterKey } from "../../infra/cluster-key.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { storeRequest } from "../../actors/storage-node/client.ts";
import { useNatsServer } from "../support/nats.ts";
import { type RunningVeil, runVeil, startVeil } from "../support/cli.ts";

const nats = useNatsServer();
const running: RunningVeil[] = [];
const folders: string[] = [];

/** Private brokers that tests saw; killed after each test in case veil could not stop them. */
const brokers: string[] = [];

afterEach(async () => {
  for (const veil of running.splice(0)) {
    // Gracefully first, so veil stops its private broker itself; forcefully if it will not.
    if (veil.child.exitCode === null) veil.child.kill("SIGTERM");
    const forced = setTimeout(() => veil.child.kill("SIGKILL"), 10_000);
    await veil.exited;
    clearTimeout(forced);
  }
  for (const pid of brokers.splice(0)) {
    try {
      process.kill(Number(pid), "SIGKILL");
    } catch {
      // Already gone, as it should be.
    }
  }
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

async function dataFolder(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), "veil-test-data-"));
  folders.push(folder);
  return folder;
}

/** A data folder with its broker identities, as `veil up` makes them. */
async function withIdentities() {
  const folder = await dataFolder();
  return { dataFolder: folder, identities: await loadOrCreateIdentities(folder) };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

const processGroup = (pid: string) => execFileSync("ps", ["-o", "pgid=", "-p", pid], { encoding: "utf8" }).trim();

describe("veil up", () => {
  it("uses the broker at NATS_URL, joins, and on SIGTERM persists projections and leaves", async () => {
    const data = await dataFolder();
    const veil = startVeil(["up", "--servers", "1", "--prefix", "launcher-a"], {
      env: { ...nats.env, VEIL_DATA: data },
    });
    running.push(veil);
    const summary = await veil.waitForOutput(/Press Ctrl-C to stop/);
    expect(summary).toContain(`NATS       ${nats.url}\n`);
    expect(summary).toMatch(/servers\s+launcher-a-1/);

    // Inspection works against the running node: the log and time travel.
    const events = await runVeil(["events", "--subject", "node.launcher-a-1", "--json"], {
      env: nats.env,
    });
    const joinedRecord = JSON.parse(events.stdout.trim());
    expect(joinedRecord).toMatchObject({ type: "NodeJoined", data: { node: "launcher-a-1", role: "server" } });
    const before = await runVeil(["state", "cluster", "--at", String(joinedRecord.seq - 1), "--json"], {
      env: nats.env,
    });
    expect(JSON.parse(before.stdout).state.nodes["launcher-a-1"]).toBeUndefined();
    const now = await runVeil(["state", "cluster"], { env: nats.env });
    expect(now.stdout).toMatch(/launcher-a-1\s+server\s+joined/);

    // Its storage nodes check tickets with the key its servers sign with, from the cluster key.
    const keys = ticketKeys(parseClusterKey(await readFile(join(data, "cluster.key"), "utf8"), "cluster.key"));
    const bytes = new Uint8Array(100).fill(7);
    const hash = bytesToHex(sha256(bytes));
    const ticket = (secretKey: Uint8Array) =>
      signTicket(secretKey, {
        op: "put",
        node: "storage-1",
        hashes: [hash],
        bytesMax: 100,
        expiresAt: Date.now() + 60_000,
      });
    const bus = natsBus(nats.nc, silentLogger);
    const forged = ticket(ticketKeys(new Uint8Array(32).fill(1)).secretKey);
    await expect(storeRequest(bus, "storage-1", "put", { hash, bytes, ticket: forged })).rejects.toThrow(
      /signature is not the cluster's/,
    );
    expect(await storeRequest(bus, "storage-1", "put", { hash, bytes, ticket: ticket(keys.secretKey) })).toEqual({
      stored: true,
    });

    veil.child.kill("SIGTERM");
    expect(await veil.exited).toBe(0);
    const { records } = await nats.log.readAggregate(nodeSubject("launcher-a-1"));
    expect(records.map((record) => record.ok && record.event.type)).toEqual(["NodeJoined", "NodeLeft"]);
    const snapshot = await (await openSnapshotStore(nats.nc, { replicas: 1 })).load("cluster");
    expect(snapshot?.seq).toBeGreaterThanOrEqual(records[0]!.seq);
  });

  it("starts a private nats-server when none answers, and on Ctrl-C leaves before stopping it", async () => {
    const port = await freePort();
    const data = await dataFolder();
    const url = `nats://127.0.0.1:${port}`;
    const veil = startVeil(["up"], { env: { NATS_URL: url, VEIL_DATA: data }, ownProcessGroup: true });
    running.push(veil);
    const summary = await veil.waitForOutput(/Press Ctrl-C to stop/);
    expect(summary).toContain(`private nats-server, store ${join(data, "nats")}`);
    expect((await stat(join(data, "nats", "jetstream"))).isDirectory()).toBe(true);

    // Ctrl-C in a terminal signals the whole foreground process group at once: the private
    // broker must not be in it, or it would stop before veil had persisted and left.
    const brokerPid = execFileSync("pgrep", ["-f", `nats-server .*-p ${port}( |$)`], { encoding: "utf8" }).trim();
    expect(brokerPid).toMatch(/^\d+$/);
    brokers.push(brokerPid);
    expect(processGroup(brokerPid)).not.toBe(processGroup(String(veil.child.pid)));
    process.kill(-veil.child.pid!, "SIGINT");
    expect(await veil.exited).toBe(0);
    expect(veil.output().stderr).toMatch(/left the cluster[\s\S]*private nats-server stopped/);
    await expect(connectNats(url, { name: "launcher-test", timeoutMs: 500 })).rejects.toBeInstanceOf(UnavailableError);

    // It ran with the config it wrote (mode 0600), every user inside an accounts block.
    const configPath = join(data, "broker", "nats-server.conf");
    expect((await stat(configPath)).mode & 0o777).toBe(0o600);
    expect((await stat(join(data, "broker", "identities.json"))).mode & 0o777).toBe(0o600);
    expect(await readFile(configPath, "utf8")).toMatch(/accounts \{[\s\S]*no_auth_user: "client"/);

    // The private store kept everything, NodeLeft included: reopen it with the same config.
    const reopened = await startNatsServer({ storeFolder: join(data, "nats"), configFile: configPath });
    const identities = await loadOrCreateIdentities(data);
    const client = await connectNats(reopened.url, {
      name: "launcher-test",
      authenticator: authenticatorFor(identities, "operator"),
    });
    try {
      const { js, jsm } = await openJetStream(client, reopened.url);
      const { records } = await new NatsEventLog(js, jsm).readAggregate(nodeSubject("server-1"));
      expect(records.map((record) => record.ok && record.event.type)).toEqual(["NodeJoined", "NodeLeft"]);
    } finally {
      await client.close();
      await reopened.stop();
    }
  });

  it("says how to install nats-server when none answers and none is installed", async () => {
    const attempt = reachBroker({
      natsUrl: `nats://127.0.0.1:${await freePort()}`,
      ...(await withIdentities()),
      name: "t",
      logger: silentLogger,
      findBinary: () => undefined,
    });
    await expect(attempt).rejects.toBeInstanceOf(UnavailableError);
    await expect(attempt).rejects.toThrow(
      /nats-server was not found; install nats-server \(Debian\/Ubuntu: apt-get install nats-server/,
    );
  });

  it("does not start a private broker for a remote NATS_URL", async () => {
    let looked = false;
    const attempt = reachBroker({
      natsUrl: "nats://192.0.2.1:4222",
      ...(await withIdentities()),
      name: "t",
      logger: silentLogger,
      findBinary: () => {
        looked = true;
        return undefined;
      },
    });
    await expect(attempt).rejects.toThrow(/cannot reach NATS at nats:\/\/192\.0\.2\.1:4222/);
    expect(looked).toBe(false);
  });
});

/** A client port with the next `count - 1` and their routes (2000 above) free too, as `--broker-cluster` takes them. */
async function freePortRun(count: number): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 2_000 + count > 65_535) continue;
    const wanted = Array.from({ length: count }, (_, index) => [port + index, port + 2_000 + index]).flat();
    const free = await Promise.all(wanted.map((candidate) =>
      new Promise<boolean>((resolve) => {
        const server = createServer();
        server.once("error", () => resolve(false));
        server.listen(candidate, "127.0.0.1", () => server.close(() => resolve(true)));
      })
    ));
    if (free.every(Boolean)) return port;
  }
}

/** `veil health --json` until it says healthy (an election may still be under way), with a bound. */
async function healthyVerdict(env: Record<string, string>) {
  let last = "";
  for (let attempt = 0; attempt < 20; attempt++) {
    const ran = await runVeil(["health", "--json"], { env });
    last = ran.stdout + ran.stderr;
    if (ran.code === 0) return JSON.parse(ran.stdout) as { streams: { name: string; replicas: number }[] };
  }
  throw new Error(`never healthy: ${last}`);
}

describe("veil beyond one broker", () => {
  it(
    "runs a broker cluster of three with --broker-cluster 3; veil health on the list shows three replicas",
    async () => {
      const port = await freePortRun(3);
      const data = await dataFolder();
      const veil = startVeil(["up", "--broker-cluster", "3", "--servers", "1", "--storage", "1"], {
        env: { NATS_URL: `nats://127.0.0.1:${port}`, VEIL_DATA: data },
      });
      running.push(veil);
      const summary = await veil.waitForOutput(/Press Ctrl-C to stop/, 60_000);
      expect(summary).toMatch(/private cluster of 3 nats-servers/);
      const list = [0, 1, 2].map((index) => `nats://127.0.0.1:${port + index}`).join(",");
      const verdict = await healthyVerdict({ NATS_URL: list, VEIL_DATA: data });
      expect(verdict.streams.map((stream) => [stream.name, stream.replicas])).toEqual([
        ["VEIL_EVENTS", 3],
        ["VEIL_CLUSTER", 3],
        ["KV_veil_snapshots", 3],
        ["KV_veil_grant_shares", 3],
      ]);
      // Any one of the brokers serves the operator's tools.
      const state = await runVeil(["state", "cluster"], { env: { NATS_URL: list.split(",")[2]!, VEIL_DATA: data } });
      expect(state.stdout).toMatch(/server-1\s+server\s+joined/);
      veil.child.kill("SIGTERM");
      expect(await veil.exited).toBe(0);
      for (const index of [0, 1, 2]) {
        await expect(connectNats(list.split(",")[index]!, { name: "after", timeoutMs: 500 })).rejects.toBeInstanceOf(
          UnavailableError,
        );
      }
    },
    120_000,
  );

  it("prints each node's config for a cluster an operator runs, routes authenticated, as the README says", async () => {
    const data = await dataFolder();
    const routes = "10.0.0.1:6222,10.0.0.2:6222,10.0.0.3:6222";
    const node2 = await runVeil(["broker", "config", "--cluster", routes, "--node", "2"], { env: { VEIL_DATA: data } });
    expect(node2.code).toBe(0);
    expect(node2.stdout).toMatch(/server_name: "?broker-2"?/);
    expect(node2.stdout).toMatch(/listen: "?10\.0\.0\.2:6222"?/);
    expect(node2.stdout).toContain("10.0.0.1:6222");
    expect(node2.stdout).toContain("10.0.0.3:6222");
    expect(node2.stdout).not.toMatch(/broker-1"?\n/);
    const password = (await readFile(join(data, "broker", "route-password"), "utf8")).trim();
    expect(node2.stdout).toContain(password);
    const all = await runVeil(["broker", "config", "--cluster", routes], { env: { VEIL_DATA: data } });
    expect(all.stdout.match(/server_name/g)).toHaveLength(3);
    const bad = await runVeil(["broker", "config", "--cluster", "10.0.0.1:6222,nonsense"], {
      env: { VEIL_DATA: data },
    });
    expect(bad.code).toBe(2);
  });

  it("serves TLS with --tls: veil health with VEIL_TLS_CA connects, without it is refused and told why", async () => {
    const port = await freePort();
    const data = await dataFolder();
    const url = `nats://127.0.0.1:${port}`;
    const veil = startVeil(["up", "--tls", "--servers", "1", "--storage", "1"], {
      env: { NATS_URL: url, VEIL_DATA: data },
    });
    running.push(veil);
    const summary = await veil.waitForOutput(/Press Ctrl-C to stop/, 60_000);
    expect(summary).toMatch(/TLS\s+on/);
    const ca = join(data, "broker", "tls", "ca.pem");
    await healthyVerdict({ NATS_URL: url, VEIL_DATA: data, VEIL_TLS_CA: ca });
    const refused = await runVeil(["health"], { env: { NATS_URL: url, VEIL_DATA: data } });
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/set VEIL_TLS_CA to its CA file/);
  }, 120_000);

  it("says plain TCP is for loopback only when TLS is off", async () => {
    const data = await dataFolder();
    const veil = startVeil(["up", "--servers", "1", "--storage", "0"], {
      env: { NATS_URL: `nats://127.0.0.1:${await freePort()}`, VEIL_DATA: data },
    });
    running.push(veil);
    expect(await veil.waitForOutput(/Press Ctrl-C to stop/, 60_000)).toMatch(/off: plain TCP, fit for loopback only/);
  }, 120_000);
});

describe("brokers veil cannot use as they are", () => {
  it("refuses to run servers on a broker open to anyone, and says how to fix it", async () => {
    // As Debian installs it: no accounts, no users, anyone may publish anything.
    const server = await startNatsServer({ storeFolder: await dataFolder() });
    try {
      for (const args of [["up"], ["node", "--role", "server", "--id", "open-1"]]) {
        const ran = await runVeil(args, {
          env: {
            NATS_URL: server.url,
            VEIL_DATA: await dataFolder(),
            VEIL_CREDS: nats.env.VEIL_CREDS,
            VEIL_LOG: "warn",
          },
        });
        expect(ran.code, args.join(" ")).toBe(5);
        expect(ran.stderr).toMatch(/is open: an unauthenticated connection can publish into the servers' account/);
        expect(ran.stderr).toMatch(/veil broker config/);
      }
      // Nothing was written there.
      const probe = await connectNats(server.url, { name: "probe" });
      const { jsm } = await openJetStream(probe, server.url);
      expect(await jsm.streams.names().next()).toEqual([]);
      await probe.close();
    } finally {
      await server.stop();
    }
  });

  it("runs on a nats-server started with the config `veil broker config` prints", async () => {
    const data = await dataFolder();
    const printed = await runVeil(["broker", "config", "--store", join(data, "own-store")], {
      env: { VEIL_DATA: data },
    });
    expect(printed.code).toBe(0);
    const configPath = join(data, "veil.conf");
    await writeFile(configPath, printed.stdout);
    const server = await startNatsServer({ storeFolder: join(data, "own-store"), configFile: configPath });
    const veil = startVeil(["up", "--servers", "1", "--storage", "1"], {
      env: { NATS_URL: server.url, VEIL_DATA: data, VEIL_LOG: "warn" },
    });
    running.push(veil);
    try {
      await veil.waitForOutput(/Press Ctrl-C to stop/);
      // The operator's tools find their identity in the same data folder...
      // (Live means caught up; the election may still be under way: ask again until it is over.)
      let leaders: string[] = [];
      for (let attempt = 0; attempt < 20 && leaders.length === 0; attempt++) {
        const nodes = await runVeil(["nodes", "--json"], { env: { NATS_URL: server.url, VEIL_DATA: data } });
        expect(nodes.code).toBe(0);
        leaders = (JSON.parse(nodes.stdout) as { id: string; leader: boolean }[]).filter((node) => node.leader)
          .map((node) => node.id);
      }
      expect(leaders).toEqual(["server-1"]);
      // ...and an anonymous connection there has the client's rights only.
      const anonymous = await connectNats(server.url, { name: "anonymous" });
      await expect(anonymous.request("$JS.API.INFO", undefined, { timeout: 1_000 })).rejects.toThrow(
        /Permissions Violation/,
      );
      await anonymous.close();
    } finally {
      veil.child.kill("SIGTERM");
      await veil.exited;
      await server.stop();
    }
  });

  it("tells the user to start veil when the broker has no veil log yet", async () => {
    const server = await startNatsServer({ storeFolder: await dataFolder() });
    try {
      const ran = await runVeil(["events"], { env: { NATS_URL: server.url, VEIL_CREDS: nats.env.VEIL_CREDS } });
      expect(ran.code).toBe(3);
      expect(ran.stderr).toMatch(
        /there is no veil event log \(stream VEIL_EVENTS\) at .*; start veil with `veil up` first/,
      );
    } finally {
      await server.stop();
    }
  });

  it("says JetStream is missing when the broker runs without it", async () => {
    const server = await startNatsServer({ storeFolder: await dataFolder(), jetStream: false });
    try {
      const ran = await runVeil(["events"], { env: { NATS_URL: server.url, VEIL_CREDS: nats.env.VEIL_CREDS } });
      expect(ran.code).toBe(6);
      expect(ran.stderr).toMatch(/has no JetStream; start nats-server with -js/);
    } finally {
      await server.stop();
    }
  });
});
