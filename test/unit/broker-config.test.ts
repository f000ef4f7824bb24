import { describe, expect, it } from "vitest";
import { brokerConfig, clientPermissions, trustedPermissions } from "../../infra/nats/broker-config.ts";

const identities = {
  server: "U".padEnd(56, "A"),
  storage: "U".padEnd(56, "B"),
  operator: "U".padEnd(56, "C"),
  clientPassword: "client-password-0123456789",
};
const text = brokerConfig({ identities, storeFolder: "/data/nats" });

describe("the generated broker config", () => {
  it("puts every user inside an accounts block, never in a top-level authorization block (CVE-2023-47090)", () => {
    expect(text).not.toMatch(/authorization/);
    const accounts = text.slice(text.indexOf("accounts {"));
    for (const key of [identities.server, identities.storage, identities.operator, identities.clientPassword]) {
      expect(accounts).toContain(key);
    }
    expect(text.indexOf("accounts {")).toBeLessThan(text.indexOf(identities.server));
  });

  it("maps anonymous connections to the client user, unless the client password is required", () => {
    expect(text).toMatch(/^no_auth_user: "client"$/m);
    expect(brokerConfig({ identities, storeFolder: "/data/nats", requireClientCredential: true })).not.toMatch(
      /no_auth_user/,
    );
  });

  it("gives JetStream to the trusted account only", () => {
    const trusted = text.slice(text.indexOf("  VEIL {"), text.indexOf("  CLIENTS {"));
    const clients = text.slice(text.indexOf("  CLIENTS {"));
    expect(trusted).toMatch(/jetstream: enabled/);
    expect(clients).not.toMatch(/jetstream/);
  });
});

describe("the identities' permissions", () => {
  it("let users' machines send commands and chunk requests and read their replies, and nothing else", () => {
    expect(clientPermissions.publish.allow).toEqual(["veil.cmd.>", "veil.store.*.put", "veil.store.*.get"]);
    for (const forbidden of ["veil.evt.>", "veil.hb.>", "veil.election.>", "$JS.>", "$KV.>", "$SYS.>", "veil.cmd.>"]) {
      expect(clientPermissions.subscribe.allow).not.toContain(forbidden);
    }
  });

  it("never let anyone delete or purge a stream, and let only servers write the log", () => {
    for (const kind of ["server", "storage", "operator"] as const) {
      const { publish } = trustedPermissions[kind];
      const allowsAll = publish.allow.includes("$JS.API.>");
      if (allowsAll) {
        expect(publish.deny).toEqual(expect.arrayContaining(["$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>"]));
      } else {expect(publish.allow.some((subject) =>
          /DELETE\.\*|PURGE/.test(subject) && subject.startsWith("$JS.API.STREAM")
        )).toBe(false);}
    }
    expect(trustedPermissions.storage.publish.allow.some((subject) => subject.startsWith("veil.evt"))).toBe(false);
    expect(trustedPermissions.operator.publish.allow.some((subject) => subject.startsWith("veil.evt"))).toBe(false);
    expect(trustedPermissions.server.publish.deny).toContain("veil.hb.storage.>");
  });
});
