/** The cluster key's record: given what the log holds, when a server starts with a key, then what it records. */
import { describe, expect, it } from "vitest";
import type { LogRecord } from "../../actors/ports.ts";
import { decideClusterKey } from "../../actors/server/cluster-key.ts";
import { clusterKeySubject, type VeilEvent, veilEvent } from "../../events/mod.ts";
import { decider } from "../support/given-when-then.ts";
import { origin } from "../support/events.ts";

const key = { fingerprint: new Uint8Array(16).fill(1), sealingKey: new Uint8Array(32).fill(2) };
const other = { fingerprint: new Uint8Array(16).fill(9), sealingKey: new Uint8Array(32).fill(8) };
const recorded = (record: { fingerprint: Uint8Array; sealingKey?: Uint8Array }) =>
  veilEvent("ClusterKeyRecorded", record, origin());

const given = decider<LogRecord | undefined, VeilEvent, typeof key>({
  initial: undefined,
  evolve: (last, event) => ({ seq: (last?.seq ?? 0) + 1, subject: clusterKeySubject, storedAt: 0, ok: true, event }),
  decide: (server, last) => decideClusterKey(last, server, origin()),
});

describe("the cluster key's record", () => {
  it("is made by the first server", () => {
    given().when(key).then(["ClusterKeyRecorded"], ([event]) => {
      expect(event!.data).toEqual({ fingerprint: key.fingerprint, sealingKey: key.sealingKey });
    });
  });

  it("is left alone by a server with the same key", () => {
    given(recorded(key)).when(key).then([]);
  });

  it("gains the public sealing key a record from before sealed commands lacked", () => {
    given(recorded({ fingerprint: key.fingerprint })).when(key).then(["ClusterKeyRecorded"]);
  });

  it("refuses a server with another key, saying how to fix it", () => {
    given(recorded(key)).when(other).thenRefuses(
      "validation",
      /not the one the cluster uses; give every server the same key/,
    );
  });
});
