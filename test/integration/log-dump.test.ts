/**
 * A log dump, as a failing simulation seed leaves it: `veil events --log FILE` lists it and
 * `veil state PROJECTION --log FILE --at SEQ` folds it, as they do the broker's log; a file
 * that is not a dump is refused with a clear message.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SimulatedClock } from "xstate";
import { writeLogDump } from "../../infra/log-dump.ts";
import { nodeSubject } from "../../events/mod.ts";
import { MemoryEventLog } from "../sim/memory-log.ts";
import { runVeil } from "../support/cli.ts";
import { joined, left } from "../support/events.ts";

let folder: string;
let dump: string;

beforeAll(async () => {
  folder = await mkdtemp(join(tmpdir(), "veil-dump-"));
  dump = join(folder, "veil-sim-seed-1.veillog");
  const log = new MemoryEventLog(new SimulatedClock());
  await log.append(nodeSubject("s1"), [joined("s1")]);
  await log.append(nodeSubject("s2"), [joined("s2")]);
  log.appendRaw("veil.evt.node.s3", new TextEncoder().encode("not msgpack"));
  await log.append(nodeSubject("s1"), [left("s1")]);
  await writeLogDump(dump, log.stored);
});
afterAll(() => rm(folder, { recursive: true, force: true }));

describe("veil reading a log dump", () => {
  it("folds it up to a sequence with veil state --at", async () => {
    const at2 = await runVeil(["state", "cluster", "--log", dump, "--at", "2", "--json"]);
    expect(at2.code, at2.stderr).toBe(0);
    const state = JSON.parse(at2.stdout);
    expect(state).toMatchObject({ projection: "cluster", seq: 2, skipped: 0 });
    expect(Object.keys(state.state.nodes).sort()).toEqual(["s1", "s2"]);

    const whole = JSON.parse((await runVeil(["state", "cluster", "--log", dump, "--json"])).stdout);
    expect(whole).toMatchObject({ seq: 4, skipped: 1 });
    expect(whole.state.nodes.s1.status).toBe("left");
  });

  it("lists it with veil events, the undecodable entry shown as such", async () => {
    const ran = await runVeil(["events", "--log", dump, "--from", "3"]);
    expect(ran.code, ran.stderr).toBe(0);
    const lines = ran.stdout.trim().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/veil\.evt\.node\.s3\s+!event-malformed/);
    expect(lines[1]).toMatch(/NodeLeft/);
  });

  it("refuses a file that is not a dump, and one that is not there", async () => {
    const junk = join(folder, "junk.veillog");
    await writeFile(junk, "hello");
    const ran = await runVeil(["state", "cluster", "--log", junk]);
    expect(ran.code).not.toBe(0);
    expect(ran.stderr).toMatch(/junk\.veillog is not a veil log dump/);
    const missing = await runVeil(["events", "--log", join(folder, "none.veillog")]);
    expect(missing.stderr).toMatch(/cannot read the log dump .*none\.veillog: no such file/);
    const disordered = join(folder, "disordered.veillog");
    const bytes = new Uint8Array([0x90]);
    await writeLogDump(disordered, [{ seq: 5, subject: "veil.evt.x", storedAt: 0, bytes }, {
      seq: 2,
      subject: "veil.evt.x",
      storedAt: 0,
      bytes,
    }]);
    expect((await runVeil(["events", "--log", disordered])).stderr).toMatch(/entry 1 has sequence 2 after 5/);
  });
});
