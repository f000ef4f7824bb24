import type { Command, CommanderError } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram } from "../../infra/cli/main.ts";
import { encodeEvent, encodeMessage, nodeSubject } from "../../events/mod.ts";
import { useNatsServer } from "../support/nats.ts";
import { type Runtime, runVeil } from "../support/cli.ts";
import { joined, left } from "../support/events.ts";

const nats = useNatsServer();
const env = () => (nats.env);

describe.each<Runtime>(["node", "deno"])("veil CLI on %s", (runtime) => {
  it("lists events as lines and as JSON, filtered by subject and sequence", async () => {
    const subject = nodeSubject(`cli-${runtime}`);
    const [first, second] = await nats.log.append(subject, [joined(`cli-${runtime}`), left(`cli-${runtime}`)]);

    const lines = await runVeil(["events", "--subject", `node.cli-${runtime}`], { env: env(), runtime });
    expect(lines.code).toBe(0);
    expect(lines.stdout.trim().split("\n")).toEqual([
      expect.stringMatching(
        new RegExp(
          `^\\s*${first}\\s+\\S+Z\\s+${subject}\\s+NodeJoined\\s+\\{"node":"cli-${runtime}","role":"server"\\}$`,
        ),
      ),
      expect.stringMatching(new RegExp(`^\\s*${second}\\s+\\S+Z\\s+${subject}\\s+NodeLeft\\s+`)),
    ]);

    const json = await runVeil(["events", "--json", "--from", String(second)], { env: env(), runtime });
    expect(json.code).toBe(0);
    const parsed = json.stdout.trim().split("\n").map((line) => JSON.parse(line));
    expect(parsed[0]).toMatchObject({ seq: second, subject, type: "NodeLeft", data: { reason: "shutdown" } });
  });

  it("decodes one msgpack event from stdin to JSON (the NATS CLI --translate recipe)", async () => {
    const event = joined("decode-me");
    const ran = await runVeil(["decode"], { env: env(), runtime, stdin: encodeEvent(event) });
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toEqual(event);
  });
});

describe("veil CLI with bad input", () => {
  it("shows undecodable log entries with their error code and keeps listing", async () => {
    await nats.js.publish("veil.evt.x.y", new TextEncoder().encode("garbage"));
    await nats.js.publish(
      "veil.evt.x.y",
      encodeMessage({ type: "MoonLanded", v: 1, id: "m", at: 1, by: "t", data: {} }),
    );
    await nats.log.append(nodeSubject("after-garbage"), [joined("after-garbage")]);
    const ran = await runVeil(["events", "--subject", "veil.evt.>"], { env: env() });
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(/veil\.evt\.x\.y\s+!event-malformed: not valid msgpack/);
    expect(ran.stdout).toMatch(/!event-unknown-type: unknown event type MoonLanded/);
    expect(ran.stdout).toMatch(/after-garbage/);

    const state = await runVeil(["state", "cluster"], { env: env() });
    expect(state.code).toBe(0);
    expect(state.stdout).toMatch(/undecodable entries skipped/);
    expect(state.stdout).toMatch(/after-garbage\s+server\s+joined/);
  });

  it.each([
    ["garbage", new TextEncoder().encode("garbage"), /not valid msgpack/],
    ["a truncated event", encodeEvent(joined("t")).slice(0, 12), /not valid msgpack/],
    [
      "an unknown type",
      encodeMessage({ type: "MoonLanded", v: 1, id: "m", at: 1, by: "t", data: {} }),
      /unknown event type/,
    ],
    ["a 900 KB payload", new Uint8Array(900 * 1024), /exceeds the \d+-byte limit/],
  ])("decode refuses %s with a clear message and status 7", async (_, stdin, message) => {
    const ran = await runVeil(["decode"], { stdin });
    expect(ran.code).toBe(7);
    expect(ran.stderr).toMatch(message);
    expect(ran.stdout).toBe("");
  });

  it("decode --raw prints 64-bit integers beyond 2^53 exactly, as strings", async () => {
    const uint64Max = new Uint8Array([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    const ran = await runVeil(["decode", "--raw"], { stdin: uint64Max });
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toBe("18446744073709551615");
  });

  it("decode --raw prints any msgpack value", async () => {
    const ran = await runVeil(["decode", "--raw"], { stdin: encodeMessage({ hello: [1, 2] }) });
    expect(ran.code).toBe(0);
    expect(JSON.parse(ran.stdout)).toEqual({ hello: [1, 2] });
  });

  it.each([
    [["state", "nope"], /unknown projection "nope"; choose one of cluster/],
    [["state", "cluster", "--at", "banana"], /--at must be a sequence number or an ISO time/],
    [["events", "--from", "0"], /--from must be a stream sequence/],
    [["events", "--since", "yesterday"], /--since must be a duration like 15m or an ISO time/],
    [["events", "--subject", "a b"], /--subject "a b" is not a subject under veil.evt/],
    [["events", "--since", "999999999999d"], /--since "999999999999d" is outside the years 1970 to 9999/],
  ])("rejects %j with status 2 and says why", async (args, message) => {
    const ran = await runVeil(args, { env: env() });
    expect(ran.code).toBe(2);
    expect(ran.stderr).toMatch(message);
  });

  it("says clearly when no broker answers", async () => {
    const ran = await runVeil(["events"], { env: { NATS_URL: "nats://127.0.0.1:1" } });
    expect(ran.code).toBe(6);
    expect(ran.stderr).toMatch(/cannot reach NATS at nats:\/\/127\.0\.0\.1:1/);
  });

  it("never shows the credentials in NATS_URL", async () => {
    const ran = await runVeil(["events"], { env: { NATS_URL: "nats://alice:s3cret@127.0.0.1:1" } });
    expect(ran.code).toBe(6);
    expect(ran.stderr).toMatch(/cannot reach NATS at nats:\/\/\*\*\*@127\.0\.0\.1:1/);
    expect(ran.stderr + ran.stdout).not.toMatch(/s3cret|alice/);
  });

  it("has --help on every command", async () => {
    // Every command the program defines, subcommands included, so a new one cannot be left out.
    const paths = (command: Command, prefix: string[]): string[][] =>
      command.commands.flatMap((sub) => [[...prefix, sub.name()], ...paths(sub, [...prefix, sub.name()])]);
    const all = paths(buildProgram(), []);
    expect(all.map((path) => path.join(" "))).toEqual(expect.arrayContaining(["register", "login", "otp enable"]));
    // In this process, each on a fresh program (a process each would take most of a minute)...
    for (const path of all) {
      let out = "";
      const program = buildProgram();
      const capture = (command: Command): void => {
        command.configureOutput({ writeOut: (text) => void (out += text), writeErr: (text) => void (out += text) });
        command.commands.forEach(capture);
      };
      capture(program);
      const ended = await program.parseAsync([...path, "--help"], { from: "user" }).then(
        () => "returned",
        (error: CommanderError) => error.code,
      );
      expect(ended, path.join(" ")).toBe("commander.helpDisplayed");
      expect(out).toMatch(new RegExp(`^Usage: veil ${path.join(" ")}`));
    }
    // ...and as a user runs it, for a command and a subcommand.
    for (const path of [["upload"], ["otp", "enable"]]) {
      const ran = await runVeil([...path, "--help"]);
      expect(ran.code, path.join(" ")).toBe(0);
      expect(ran.stdout).toMatch(new RegExp(`^Usage: veil ${path.join(" ")}`));
    }
  }, 60_000);
});

describe("time travel from the CLI", () => {
  it("shows the state at a sequence and at a time", async () => {
    const subject = nodeSubject("tt-node");
    const [joinedSeq] = await nats.log.append(subject, [joined("tt-node")]);
    await nats.log.append(subject, [left("tt-node")]);

    const atSeq = await runVeil(["state", "cluster", "--at", String(joinedSeq), "--json"], { env: env() });
    expect(atSeq.code).toBe(0);
    const then = JSON.parse(atSeq.stdout);
    expect(then.seq).toBe(joinedSeq);
    expect(then.state.nodes["tt-node"].status).toBe("joined");

    // --at <time> folds everything stored at or before that millisecond; two appends can share one.
    const stored: { seq: number; time: string }[] = JSON.parse(
      `[${
        (await runVeil(["events", "--subject", "node.tt-node", "--json"], { env: env() })).stdout.trim().split("\n")
          .join(",")
      }]`,
    );
    const sameMillisecond = stored[1]!.time === stored[0]!.time;
    const atTime = await runVeil(["state", "cluster", "--at", then.time], { env: env() });
    expect(atTime.stdout).toMatch(sameMillisecond ? /tt-node\s+server\s+left/ : /tt-node\s+server\s+joined/);
    const now = await runVeil(["state", "cluster"], { env: env() });
    expect(now.stdout).toMatch(/tt-node\s+server\s+left \(shutdown\)/);
  });
});
