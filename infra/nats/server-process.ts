/**
 * Starts and stops a `nats-server -js` child process. The launcher uses it for a private
 * broker when none answers, and the test harness and benchmarks for a throwaway one on a
 * free port. veil never re-implements the broker; it only runs the real one.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { limits, UnavailableError } from "../../events/mod.ts";

export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the server (SIGTERM, then SIGKILL past the shutdown bound) and waits for it. */
  stop(): Promise<void>;
}

/** Folders searched besides PATH: Debian puts nats-server in /usr/sbin, Homebrew in its own. */
const extraBinaryFolders = ["/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/opt/homebrew/bin"];

export const natsInstallHint =
  "install nats-server (Debian/Ubuntu: apt-get install nats-server; macOS: brew install nats-server) " +
  "or point NATS_URL at a running one";

export function findNatsServerBinary(pathVariable = process.env.PATH ?? ""): string | undefined {
  const folders = [...pathVariable.split(":").filter(Boolean), ...extraBinaryFolders];
  for (const folder of folders) {
    const candidate = join(folder, "nats-server");
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next folder.
    }
  }
  return undefined;
}

export async function startNatsServer(options: {
  /** Folder for JetStream's file store. */
  storeFolder: string;
  host?: string;
  /** A fixed port, or undefined for a free one chosen by the server itself. */
  port?: number;
  binary?: string;
  /** JetStream on (default); off only to test how veil copes with a broker without it. */
  jetStream?: boolean;
  /**
   * veil's generated config (accounts, identities, permissions, JetStream's store). Without
   * one the server is open to anyone: only tests that need such a broker start one.
   */
  configFile?: string;
  /**
   * In its own process group, so a Ctrl-C in the terminal reaches only its owner, which
   * stops it last (after its actors have persisted and left). The owner must stop it.
   */
  detached?: boolean;
  /** A command that runs the server for us (`ip netns exec host-1`: a host of the tests' own topology). */
  runIn?: readonly string[];
}): Promise<NatsServerProcess> {
  const binary = options.binary ?? findNatsServerBinary();
  if (!binary) throw new UnavailableError(`nats-server was not found; ${natsInstallHint}`);
  const host = options.host ?? "127.0.0.1";
  // `-p -1` lets the server pick a free port itself, so two test files never race for one.
  const args = [
    ...(options.configFile ? ["-c", options.configFile] : []),
    ...(options.jetStream === false || options.configFile ? [] : ["-js"]),
    "-a",
    host,
    "-p",
    String(options.port ?? -1),
    ...(options.configFile ? [] : ["-sd", options.storeFolder]),
  ];
  const [command, ...line] = [...(options.runIn ?? []), binary, ...args];
  const child = spawn(command!, line, { stdio: ["ignore", "ignore", "pipe"], detached: options.detached ?? false });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await waitUntilReady(child);
  return {
    url: `nats://${host}:${port}`,
    port,
    pid: child.pid!,
    stop: () => stopChild(child, exited),
  };
}

function waitUntilReady(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let output = "";
    let port: number | undefined;
    const onExit = (code: number | null) => fail(`exited with status ${code}`);
    const fail = (why: string) => {
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(
        new UnavailableError(
          `nats-server did not start: ${why}\n${output.slice(-limits.natsStartOutputShownBytesMax)}`,
        ),
      );
    };
    const timer = setTimeout(() => fail(`not ready within ${limits.natsStartTimeoutMs} ms`), limits.natsStartTimeoutMs);
    child.once("error", (error) => fail(error.message));
    child.once("exit", onExit);
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (chunk: string) => {
      if (output.length < limits.natsStartOutputBytesMax) output += chunk;
      port ??= Number(/Listening for client connections on [^\s]+:(\d+)/.exec(output)?.[1]) || undefined;
      if (port !== undefined && output.includes("Server is ready")) {
        clearTimeout(timer);
        child.removeListener("exit", onExit);
        // Keep draining stderr so a chatty server never blocks on a full pipe.
        child.stderr!.removeAllListeners("data");
        child.stderr!.resume();
        resolve(port);
      }
    });
  });
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  let timer: ReturnType<typeof setTimeout> | undefined;
  const forced = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, limits.shutdownTimeoutMs);
  });
  await Promise.race([exited, forced]);
  clearTimeout(timer);
  await exited;
}
