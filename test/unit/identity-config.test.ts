/** Identity settings: session lifetime, the cluster key (from the environment or a 0600 file), the .eml mail folder. */
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Buffer } from "node:buffer";
import { afterEach, describe, expect, it } from "vitest";
import { loadClusterKey, parseClusterKey } from "../../infra/cluster-key.ts";
import { loadConfig } from "../../infra/config.ts";
import { fileTransport } from "../../infra/mail/transport.ts";
import { silentLogger } from "../support/logger.ts";

const folders: string[] = [];
const folder = async () => {
  const made = await mkdtemp(join(tmpdir(), "veil-test-identity-"));
  folders.push(made);
  return made;
};
afterEach(async () => {
  for (const made of folders.splice(0)) await rm(made, { recursive: true, force: true });
});

describe("identity settings", () => {
  it("takes a session lifetime as a duration, 24 h by default", () => {
    expect(loadConfig({}).sessionTtlMs).toBe(24 * 3_600_000);
    expect(loadConfig({ VEIL_SESSION_TTL: "30m" }).sessionTtlMs).toBe(30 * 60_000);
    expect(loadConfig({ VEIL_SESSION_TTL: "7d" }).sessionTtlMs).toBe(7 * 86_400_000);
    for (const bad of ["0s", "24", "100d", "1h30m"]) {
      expect(() => loadConfig({ VEIL_SESSION_TTL: bad }), bad).toThrow(/VEIL_SESSION_TTL must be a duration/);
    }
    expect(() => loadConfig({ VEIL_SMTP_URL: "http://mail" })).toThrow(/smtp:\/\//);
  });

  it("takes each user's storage quota as a size, 100 GiB by default, and refuses anything else", () => {
    expect(loadConfig({}).userQuotaBytes).toBe(100 * 1024 ** 3);
    expect(loadConfig({ VEIL_QUOTA: "20GB" }).userQuotaBytes).toBe(20 * 1000 ** 3);
    expect(loadConfig({ VEIL_QUOTA: "512 MiB" }).userQuotaBytes).toBe(512 * 1024 ** 2);
    for (const bad of ["0", "lots", "-5GB", "12 parsecs"]) {
      expect(() => loadConfig({ VEIL_QUOTA: bad }), bad).toThrow(/VEIL_QUOTA must be a size like 500MB/);
    }
  });

  it("reads a cluster key from VEIL_CLUSTER_KEY as hex or base64, and refuses anything else", async () => {
    const hex = "ab".repeat(32);
    expect(parseClusterKey(hex, "x")).toEqual(new Uint8Array(32).fill(0xab));
    expect(parseClusterKey(Buffer.from(new Uint8Array(32).fill(1)).toString("base64"), "x")).toEqual(
      new Uint8Array(32).fill(1),
    );
    expect(() => parseClusterKey("too short", "VEIL_CLUSTER_KEY")).toThrow(/VEIL_CLUSTER_KEY must hold 32 bytes/);
    const config = loadConfig({ VEIL_CLUSTER_KEY: hex, VEIL_DATA: await folder() });
    expect(await loadClusterKey(config, silentLogger)).toEqual(new Uint8Array(32).fill(0xab));
  });

  it("creates the cluster key file once, mode 0600, and reads the same key after", async () => {
    const data = await folder();
    const config = loadConfig({ VEIL_DATA: data });
    const first = await loadClusterKey(config, silentLogger);
    expect((await stat(join(data, "cluster.key"))).mode & 0o777).toBe(0o600);
    expect(await loadClusterKey(config, silentLogger)).toEqual(first);
    expect(first.byteLength).toBe(32);
  });

  it("writes each mail as an .eml file when no SMTP server is set", async () => {
    const mail = join(await folder(), "mail");
    await fileTransport(mail, "veil <veil@localhost>").send({ to: "a@example.test", subject: "hi", text: "hello" });
    const [name] = await readdir(mail);
    expect(name).toMatch(/\.eml$/);
    const eml = await readFile(join(mail, name!), "utf8");
    expect(eml).toMatch(/^To: a@example\.test$/m);
    expect(eml).toMatch(/^Subject: hi$/m);
    expect(eml).toMatch(/hello/);
    expect((await stat(join(mail, name!))).mode & 0o777).toBe(0o600);
  });
});
