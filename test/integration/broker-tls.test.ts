/**
 * TLS on a real nats-server (Debian's 2.9.10 here) with certificates from veil's private
 * test CA: clients that pin the CA get in, clients that do not and plain TCP are refused;
 * routes verify each other against the CA; websockets speak TLS with the same certificate.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { request as httpsRequest } from "node:https";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { TLSSocket } from "node:tls";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidationError } from "../../events/mod.ts";
import { makeTestCertificates, type TestCertificateFiles } from "../../infra/nats/certs.ts";
import { findNatsServerBinary, type NatsServerProcess, startNatsServer } from "../../infra/nats/server-process.ts";
import { tlsOption } from "../../infra/nats/connection.ts";
import { clientTlsBlock, routeTlsBlock, websocketTlsBlock } from "../../infra/nats/broker-config.ts";

/** Bounds on every wait in this file: nothing here should take more than a fraction of them. */
const connectTimeoutMs = 2_000;
const requestTimeoutMs = 2_000;
const logLineTimeoutMs = 10_000;
const watchedOutputBytesMax = 1_000_000;

const fixedNowMs = Date.UTC(2030, 0, 2, 3, 4, 5);
const fixedClock = { now: () => fixedNowMs };
/** Counts 1, 2, 3... so each serial is known in advance. */
const countingRandom = () => {
  let next = 1;
  return { bytes: (length: number) => new Uint8Array(length).fill(next++) };
};

let folder = "";
let ours: TestCertificateFiles;
/** From another CA: what an impostor (or a public CA nobody pinned) would hold. */
let foreign: TestCertificateFiles;
const servers: { stop(): Promise<void>; readonly pid: number }[] = [];
const connections: NatsConnection[] = [];
const killOnExit = () => servers.forEach((server) => process.kill(server.pid, "SIGKILL"));

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-test-tls-"));
  ours = await makeTestCertificates({ folder: join(folder, "ours"), hosts: ["broker.veil.test"] });
  foreign = await makeTestCertificates({ folder: join(folder, "foreign"), hosts: [] });
  process.once("exit", killOnExit);
});

afterAll(async () => {
  for (const connection of connections) await connection.close().catch(() => {});
  await Promise.all(servers.map((server) => server.stop()));
  process.removeListener("exit", killOnExit);
  if (folder) await rm(folder, { recursive: true, force: true });
});

async function writeConfig(name: string, lines: readonly string[]): Promise<string> {
  const path = join(folder, `${name}.conf`);
  await writeFile(path, lines.join("\n") + "\n");
  return path;
}

const indented = (block: string) => block.split("\n").map((line) => `  ${line}`);

async function connectTrusting(url: string, caFile: string): Promise<NatsConnection> {
  const connection = await connect({ servers: url, timeout: connectTimeoutMs, ...tlsOption([url], caFile) });
  connections.push(connection);
  return connection;
}

function serveEcho(connection: NatsConnection, subject: string): void {
  connection.subscribe(subject, {
    callback: (_, message) => {
      message.respond(`echo ${message.string()}`);
    },
  });
}

describe("the test CA", () => {
  it("signs a broker certificate for loopback and the given hosts, valid for a bounded time", async () => {
    const ca = new X509Certificate(await readFile(ours.caFile));
    const server = new X509Certificate(await readFile(ours.certFile));
    expect(ca.ca).toBe(true);
    expect(server.ca).toBe(false);
    expect(server.checkIssued(ca)).toBe(true);
    expect(server.verify(ca.publicKey)).toBe(true);
    for (const ip of ["127.0.0.1", "::1"]) expect(server.checkIP(ip)).toBe(ip);
    for (const host of ["localhost", "broker.veil.test"]) expect(server.checkHost(host)).toBe(host);
    expect(server.checkHost("elsewhere.veil.test")).toBeUndefined();
    expect(server.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
  });

  it("keeps private keys to their owner", async () => {
    for (const file of [ours.keyFile, ours.caKeyFile]) expect((await stat(file)).mode & 0o777).toBe(0o600);
    for (const file of [ours.certFile, ours.caFile]) expect((await stat(file)).mode & 0o777).toBe(0o644);
  });

  it("takes its time and serials from what it is given", async () => {
    const files = await makeTestCertificates({
      folder: join(folder, "fixed"),
      hosts: ["10.9.8.7"],
      clock: fixedClock,
      random: countingRandom(),
    });
    const ca = new X509Certificate(await readFile(files.caFile));
    const server = new X509Certificate(await readFile(files.certFile));
    expect(ca.serialNumber).toBe("01".repeat(16));
    expect(server.serialNumber).toBe("02".repeat(16));
    expect(new Date(server.validFrom).getTime()).toBe(fixedNowMs - 60 * 60 * 1_000);
    expect(new Date(server.validTo).getTime()).toBe(fixedNowMs + 825 * 24 * 60 * 60 * 1_000);
    expect(new Date(ca.validTo).getTime()).toBe(fixedNowMs + 3650 * 24 * 60 * 60 * 1_000);
    expect(server.checkIP("10.9.8.7")).toBe("10.9.8.7");
  });

  it("never replaces existing files unless forced", async () => {
    const replaced = join(folder, "replaced");
    const first = await readFile((await makeTestCertificates({ folder: replaced, hosts: [] })).caFile, "utf8");
    await expect(makeTestCertificates({ folder: replaced, hosts: [] })).rejects.toThrow(ValidationError);
    expect(await readFile(join(replaced, "ca.pem"), "utf8")).toBe(first);
    const again = await makeTestCertificates({ folder: replaced, hosts: [], force: true });
    expect(await readFile(again.caFile, "utf8")).not.toBe(first);
  });

  it("refuses a host that is neither an address nor a name", async () => {
    await expect(makeTestCertificates({ folder: join(folder, "bad"), hosts: ["not a host"] })).rejects.toThrow(
      ValidationError,
    );
  });
});

describe("client connections over TLS", () => {
  let server: NatsServerProcess;

  beforeAll(async () => {
    const configFile = await writeConfig("clients", [clientTlsBlock(ours)]);
    server = await startNatsServer({ storeFolder: folder, configFile });
    servers.push(server);
  });

  it("lets a client that pins the CA in, and carries its requests", async () => {
    const connection = await connectTrusting(server.url, ours.caFile);
    serveEcho(connection, "tls.echo");
    await connection.flush();
    const reply = await connection.request("tls.echo", "hello", { timeout: requestTimeoutMs });
    expect(reply.string()).toBe("echo hello");
  });

  it("refuses a client that trusts only the system's roots", async () => {
    await expect(connect({ servers: server.url, timeout: connectTimeoutMs, tls: {} })).rejects.toMatchObject({
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
  });

  it("refuses a client that pins another CA", async () => {
    await expect(
      connect({ servers: server.url, timeout: connectTimeoutMs, ...tlsOption([server.url], foreign.caFile) }),
    ).rejects
      .toMatchObject({ code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE" });
  });

  it("never speaks NATS in the clear", async () => {
    const { received, closed } = await plainTcpSession(server.port, 'CONNECT {"verbose":true}\r\nPING\r\n');
    expect(closed).toBe(true);
    expect(received).toMatch(/^INFO \{.*"tls_required":true/);
    expect(received).not.toMatch(/\+OK|PONG/);
  });
});

/**
 * What the server sends a plain TCP client that reads its INFO and then speaks NATS
 * without starting TLS, until the server closes the connection (or the bound passes).
 */
function plainTcpSession(port: number, afterInfo: string): Promise<{ received: string; closed: boolean }> {
  return new Promise((resolve) => {
    let received = "";
    let sent = false;
    const socket = createConnection(port, "127.0.0.1");
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ received, closed: false });
    }, connectTimeoutMs);
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      received += text;
      if (!sent && received.includes("\r\n")) {
        sent = true;
        socket.write(afterInfo);
      }
    });
    socket.on("error", () => {/* A reset is one more way of being refused; "close" follows. */});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ received, closed: true });
    });
  });
}

describe("routes and websockets over TLS", () => {
  let first: WatchedNatsServer;
  let routePort = 0;
  let websocketPort = 0;

  beforeAll(async () => {
    const configFile = await writeConfig("node-first", [
      clientTlsBlock(ours),
      "cluster {",
      '  name: "veil-tls-test"',
      '  listen: "127.0.0.1:-1"',
      ...indented(routeTlsBlock(ours)),
      "}",
      "websocket {",
      '  listen: "127.0.0.1:-1"',
      ...indented(websocketTlsBlock(ours)),
      "}",
    ]);
    first = await startWatchedNatsServer(configFile);
    servers.push(first);
    routePort = Number((await first.waitForLine(/Listening for route connections on [^\s]+:(\d+)/))[1]);
    websocketPort = Number((await first.waitForLine(/Listening for websocket clients on wss:\/\/[^\s]+:(\d+)/))[1]);
  });

  /** A second node whose route dials the first with the given certificate, trusting our CA. */
  async function startSecondNode(name: string, files: TestCertificateFiles): Promise<NatsServerProcess> {
    const configFile = await writeConfig(name, [
      clientTlsBlock(files),
      "cluster {",
      '  name: "veil-tls-test"',
      '  listen: "127.0.0.1:-1"',
      `  routes: ["nats-route://127.0.0.1:${routePort}"]`,
      ...indented(routeTlsBlock({ ...files, caFile: ours.caFile })),
      "}",
    ]);
    const server = await startNatsServer({ storeFolder: folder, configFile });
    servers.push(server);
    return server;
  }

  it("carries requests between nodes whose certificates the CA signed", async () => {
    const second = await startSecondNode("node-second", ours);
    const responder = await connectTrusting(second.url, ours.caFile);
    serveEcho(responder, "tls.routed");
    await responder.flush();
    // The first node's trace shows the second's subscription arriving over the route: from
    // then on a request there reaches it.
    await first.waitForLine(/<<- \[RS\+ \$G tls\.routed\]/);
    const requester = await connectTrusting(first.url, ours.caFile);
    const reply = await requester.request("tls.routed", "across", { timeout: requestTimeoutMs });
    expect(reply.string()).toBe("echo across");
  });

  it("refuses a route from a node whose certificate another CA signed", async () => {
    const impostor = await startSecondNode("node-impostor", foreign);
    const line = await first.waitForLine(/TLS route handshake error: (.*)/);
    expect(line[1]).toMatch(/failed to verify client certificate: x509: certificate signed by unknown authority/);
    const listener = await connectTrusting(impostor.url, foreign.caFile);
    serveEcho(listener, "tls.stolen");
    await listener.flush();
    const requester = await connectTrusting(first.url, ours.caFile);
    await expect(requester.request("tls.stolen", "secret", { timeout: requestTimeoutMs })).rejects.toThrow(
      /no responders/,
    );
  });

  it("upgrades a websocket over TLS for a client that pins the CA, and refuses one that does not", async () => {
    const upgraded = await websocketUpgrade(websocketPort, await readFile(ours.caFile));
    expect(upgraded).toEqual({ status: 101, authorized: true });
    await expect(websocketUpgrade(websocketPort, undefined)).rejects.toMatchObject({
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
  });
});

/** A websocket upgrade request over TLS; `ca` undefined means the system's roots. */
function websocketUpgrade(port: number, ca: Buffer | undefined): Promise<{ status: number; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest({
      host: "127.0.0.1",
      port,
      path: "/",
      timeout: connectTimeoutMs,
      ...(ca ? { ca } : {}),
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": Buffer.from("veil-tls-test-16").toString("base64"),
      },
    });
    request.on("upgrade", (response, socket) => {
      resolve({ status: response.statusCode ?? 0, authorized: (socket as TLSSocket).authorized });
      socket.destroy();
    });
    request.on("response", (response) => reject(new Error(`no upgrade: status ${response.statusCode}`)));
    request.on("timeout", () => request.destroy(new Error(`no answer within ${connectTimeoutMs} ms`)));
    request.on("error", reject);
    request.end();
  });
}

/**
 * A nats-server whose log (debug and trace) a test can wait on: startNatsServer keeps
 * its output to itself, and what a route refused or received shows only there.
 */
interface WatchedNatsServer {
  readonly url: string;
  readonly pid: number;
  waitForLine(pattern: RegExp): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

async function startWatchedNatsServer(configFile: string): Promise<WatchedNatsServer> {
  const binary = findNatsServerBinary();
  if (!binary) throw new Error("nats-server was not found");
  const child = spawn(binary, ["-c", configFile, "-a", "127.0.0.1", "-p", "-1", "-DV"], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let output = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (text: string) => {
    if (output.length < watchedOutputBytesMax) output += text;
  });
  const waitForLine = (pattern: RegExp) => waitForOutput(child, () => output, pattern);
  const port = Number((await waitForLine(/Listening for client connections on [^\s]+:(\d+)/))[1]);
  await waitForLine(/Server is ready/);
  return {
    url: `nats://127.0.0.1:${port}`,
    pid: child.pid!,
    waitForLine,
    stop: async () => {
      // It keeps nothing (no JetStream), so there is nothing a gentler stop would save.
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const match = pattern.exec(output());
      if (!match) return;
      done();
      resolve(match);
    };
    const onExit = () => {
      done();
      reject(new Error(`nats-server exited before logging ${pattern}\n${output().slice(-2_000)}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`nats-server did not log ${pattern} within ${logLineTimeoutMs} ms\n${output().slice(-2_000)}`));
    }, logLineTimeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.stderr!.removeListener("data", check);
      child.removeListener("exit", onExit);
    };
    child.stderr!.on("data", check);
    child.once("exit", onExit);
    check();
  });
}
