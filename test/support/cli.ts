/** Runs the real `veil` command as a child process, on Node (through the npm bin) or on Deno. */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export type Runtime = "node" | "deno";

export function veilCommand(runtime: Runtime): [string, string[]] {
  return runtime === "node"
    ? [process.execPath, [`${repoRoot}infra/cli/bin.js`]]
    : [`${repoRoot}node_modules/.bin/deno`, [
      "run",
      "--allow-all",
      `--config=${repoRoot}deno.json`,
      `${repoRoot}infra/cli/veil.ts`,
    ]];
}

/** The command line, run inside a network namespace (a test host) when one is named. */
function inHost(command: string, args: string[], netns: string | undefined): [string, string[]] {
  return netns ? ["ip", ["netns", "exec", netns, command, ...args]] : [command, args];
}

export interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runVeil(
  args: string[],
  options: {
    env?: Record<string, string>;
    stdin?: Uint8Array;
    runtime?: Runtime;
    timeoutMs?: number;
    /** The folder it runs in (default: this process's). */
    cwd?: string;
    /** The network namespace it runs in (a host of test/support/hosts.ts). */
    netns?: string;
  } = {},
): Promise<Ran> {
  const [command, line] = inHost(...veilCommand(options.runtime ?? "node"), options.netns);
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...line, ...args], {
      env: { ...process.env, NO_COLOR: "1", ...options.env },
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 20_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    // A command may stop reading early (a payload over its limit, --help): EPIPE is expected then.
    child.stdin.on("error", () => {});
    child.stdin.end(options.stdin ?? new Uint8Array());
  });
}

export interface RunningVeil {
  readonly child: ChildProcess;
  /** Resolves when stdout has matched `pattern`; rejects after `timeoutMs` or if the process exits first. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves with the exit status. */
  readonly exited: Promise<number | null>;
  output(): { stdout: string; stderr: string };
}

/** Starts a long-running command such as `veil up`; the caller must stop it (see `exited`). */
export function startVeil(
  args: string[],
  options: { env?: Record<string, string>; runtime?: Runtime; ownProcessGroup?: boolean; netns?: string } = {},
): RunningVeil {
  const [command, line] = inHost(...veilCommand(options.runtime ?? "node"), options.netns);
  const child = spawn(command, [...line, ...args], {
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    // As a terminal runs a foreground job: then a signal to the group is what Ctrl-C does.
    detached: options.ownProcessGroup ?? false,
  });
  let stdout = "";
  let stderr = "";
  const watchers = new Set<() => void>();
  child.stdout!.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
    for (const watcher of watchers) watcher();
  });
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => {
      for (const watcher of watchers) watcher();
      resolve(code);
    })
  );
  return {
    child,
    exited,
    output: () => ({ stdout, stderr }),
    waitForOutput(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(stdout)) finish();
          else if (child.exitCode !== null) {
            finish(new Error(`exited (${child.exitCode}) before printing ${pattern}:\n${stdout}\n${stderr}`));
          }
        };
        const finish = (error?: Error) => {
          clearTimeout(timer);
          watchers.delete(check);
          if (error) reject(error);
          else resolve(stdout);
        };
        const timer = setTimeout(
          () => finish(new Error(`no ${pattern} within ${timeoutMs} ms:\n${stdout}\n${stderr}`)),
          timeoutMs,
        );
        watchers.add(check);
        check();
      });
    },
  };
}
