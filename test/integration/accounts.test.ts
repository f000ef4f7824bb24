/**
 * Accounts end to end on a real nats-server and a real SMTP server: the CLI registers and
 * logs in with TOTP and leaves no secret anywhere on the broker; a stolen log logs nobody
 * in; every refusal is its own clear error; concurrent and flooding logins stay correct;
 * bad payloads change nothing; notifications reach the mail server. The server's clock is
 * the real one plus a skew the tests move, so expiry, throttling and locks need no waiting.
 */
import { readFile } from "node:fs/promises";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { derivePasswordKey, deriveSubkey, unwrapKey } from "../../actors/crypto/mod.ts";
import { fromBase32, totp } from "../../actors/server/accounts/totp.ts";
import { AuthenticationError, limits, type UserEvent, userSubject, type VeilError } from "../../events/mod.ts";
import { randomIds } from "../../infra/clock.ts";
import { checkClusterKey } from "../../infra/cluster-key.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { smtpTransport } from "../../infra/mail/transport.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { sendCommand } from "../../infra/command-client.ts";
import type { HostedServer } from "../../infra/server/host.ts";
import { type CryptoActor, startCryptoActor } from "../../infra/workers/actors.ts";
import { usersProjection } from "../../projections/mod.ts";
import { projectUntil } from "../../actors/server/projector.ts";
import { accountClient } from "../support/accounts.ts";
import { runVeil } from "../support/cli.ts";
import { waitForEvent } from "../support/events.ts";
import { silentLogger } from "../support/logger.ts";
import { hostTestServer } from "../support/servers.ts";
import { useNatsServer } from "../support/nats.ts";
import { startSmtpServer, type TestSmtp } from "../support/smtp.ts";

const nats = useNatsServer();
let skewMs = 0;
const clock = { now: () => Date.now() + skewMs };
const sessionTtlMs = 60 * 60 * 1_000;
const logLines: string[] = [];
const logger = Object.fromEntries(
  (["debug", "info", "warn", "error"] as const).map((level) => [
    level,
    (message: string, fields?: object) => void logLines.push(`${level} ${message} ${JSON.stringify(fields ?? {})}`),
  ]),
) as unknown as typeof silentLogger;
let server: HostedServer;
let crypto: CryptoActor;
let smtp: TestSmtp;
let client: ReturnType<typeof accountClient>;
let home: string;
const clusterKey = cryptoRandom.bytes(32);
const text = (value: string) => new TextEncoder().encode(value);
/** Every secret the tests handle, looked for on the whole broker and in every log line at the end. */
const secretsToFind: Record<string, Uint8Array> = { clusterKey };

/**
 * While `held` is set, every slow hash waits for it: a test fills the server's lanes with
 * hashes that do not finish, and sees who else still gets in. `hashesHeld` counts them.
 */
let held: Promise<void> | undefined;
let hashesHeld = 0;
let onHashHeld = () => {};

/** A server on the test's skewed clock and cluster key, mailing the test's SMTP server. */
const startAccountsServer = (nodeId: string) =>
  hostTestServer(nats, {
    nodeId,
    clock,
    logger,
    identity: {
      slowHash: async (...input) => {
        if (held) {
          hashesHeld++;
          onHashHeld();
          await held;
        }
        return crypto.slowHash(...input);
      },
      sessionTtlMs,
      clusterKey,
      mail: smtpTransport(smtp.url, "veil <veil@test>"),
    },
  });

beforeAll(async () => {
  smtp = await startSmtpServer();
  crypto = startCryptoActor({ size: 2 });
  home = await mkdtemp(join(tmpdir(), "veil-test-home-"));
  server = await startAccountsServer("accounts-1");
  await waitForEvent(nats.log, (event) => event.type === "LeaderElected", { timeoutMs: 10_000, what: "a leader" });
  expect(await server.live).toBe(true);
  // From inside the trusted account the address a login states is kept (a user's machine's is the
  // broker's word, the same for every test here), so tests can log in from addresses of their own.
  client = accountClient(natsBus(nats.nc, silentLogger), crypto);
}, 30_000);

afterAll(async () => {
  if (server?.actor.getSnapshot().status === "active") server.actor.send({ type: "STOP" });
  await server?.done;
  await crypto?.stop();
  await smtp?.stop();
  if (home) await rm(home, { recursive: true, force: true });
});

const refusal = (work: Promise<unknown>) =>
  work.then(() => {
    throw new Error("expected a refusal");
  }, (error: VeilError) => error);

async function userEvents(user: string): Promise<UserEvent[]> {
  const { records } = await nats.log.readAggregate(userSubject(user));
  return records.flatMap((record) => (record.ok ? [record.event as UserEvent] : []));
}

/** Every stored message of every stream on the broker (events, cluster traffic, KV snapshots), headers included. */
async function everyStoredMessage(): Promise<{ stream: string; seq: number; bytes: Uint8Array }[]> {
  const all: { stream: string; seq: number; bytes: Uint8Array }[] = [];
  for await (const info of nats.jsm.streams.list()) {
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && info.state.messages > 0; seq++) {
      const message = await nats.jsm.streams.getMessage(info.config.name, { seq }).catch(() => null);
      if (!message) continue;
      const headers = new TextEncoder().encode(message.header?.toString() ?? "");
      all.push({ stream: info.config.name, seq, bytes: new Uint8Array([...headers, ...message.data]) });
    }
  }
  return all;
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let index = 0; index + needle.length <= haystack.length; index++) {
    for (let offset = 0; offset < needle.length; offset++) {
      if (haystack[index + offset] !== needle[offset]) continue outer;
    }
    return true;
  }
  return false;
}

describe("the CLI", () => {
  const env = () => ({ ...nats.env, VEIL_HOME: home });
  const password = "a long and quiet river";

  it("registers, turns on TOTP, logs in with it, and no secret reaches the broker or the logs", async () => {
    const registered = await runVeil(["register", "Carol", "--password-stdin"], {
      env: env(),
      stdin: new TextEncoder().encode(password + "\n"),
    });
    expect(registered.stderr).toBe("");
    expect(registered.stdout).toMatch(/registered carol\nlogged in as carol/);

    const setup = await runVeil(["otp", "enable", "--json"], { env: env() });
    const { secret, uri } = JSON.parse(setup.stdout) as { secret: string; uri: string };
    expect(uri).toMatch(/^otpauth:\/\/totp\/veil%3Acarol\?secret=/);
    // The code is worked out at the server's time, which the test moves.
    const confirm =
      () => ["otp", "enable", "--json", "--password-stdin", "--code", totp(fromBase32(secret), clock.now())];
    const wrongPassword = await runVeil(confirm(), { env: env(), stdin: new TextEncoder().encode("not carol's\n") });
    expect(wrongPassword.code).toBe(10);
    expect(wrongPassword.stderr).toMatch(/the password is wrong/);
    skewMs += limits.loginDelayMaxMs;
    const confirmed = await runVeil(confirm(), { env: env(), stdin: new TextEncoder().encode(password + "\n") });
    expect(confirmed.stderr).toBe("");
    const { backupCodes } = JSON.parse(confirmed.stdout) as { backupCodes: string[] };
    expect(backupCodes).toHaveLength(limits.backupCodes);

    expect((await runVeil(["logout"], { env: env() })).stdout).toMatch(/logged out carol/);
    const noCode = await runVeil(["login", "carol", "--password-stdin"], {
      env: env(),
      stdin: new TextEncoder().encode(password + "\n"),
    });
    expect(noCode.code).toBe(10);
    expect(noCode.stderr).toMatch(/needs a TOTP code/);

    skewMs += limits.totpStepMs; // The next step: the enabling code's step is spent.
    const code = totp(fromBase32(secret), clock.now());
    const loggedIn = await runVeil(["login", "carol", "--password-stdin", "--otp", code], {
      env: env(),
      stdin: new TextEncoder().encode(password + "\n"),
    });
    expect(loggedIn.stdout).toMatch(/logged in as carol/);
    const reused = await runVeil(["login", "carol", "--password-stdin", "--otp", code], {
      env: env(),
      stdin: new TextEncoder().encode(password + "\n"),
    });
    expect(reused.code).toBe(10);
    expect(reused.stderr).toMatch(/this TOTP code was already used/);
    // Where this session came from is sealed in the log; the servers open it for carol alone.
    const here = { device: `${hostname().slice(0, 40)} (${process.platform})`, address: "127.0.0.1" };
    const whoami = JSON.parse((await runVeil(["whoami", "--json"], { env: env() })).stdout);
    expect(whoami).toMatchObject({ user: "carol", totp: true, ...here });
    const sessions = JSON.parse((await runVeil(["sessions", "--json"], { env: env() })).stdout) as unknown[];
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject(here);

    // Everything secret, in every form it could take, is looked for in every stored message.
    const stored = JSON.parse(await readFile(join(home, "profiles", "default.json"), "utf8")) as { token: string };
    const registration = (await userEvents("carol")).find((event) => event.type === "UserRegistered")!;
    if (registration.type !== "UserRegistered") throw new Error("unreachable");
    const master = await derivePasswordKey(password, registration.data.passwordSalt, registration.data.passwordKdf);
    const accountKey = unwrapKey(
      deriveSubkey(master, "account-key"),
      registration.data.accountKeyWrapped,
      "account-key:carol",
    );
    const privateKey = unwrapKey(
      deriveSubkey(master, "private-key"),
      registration.data.privateKeyWrapped,
      "private-key:carol",
    );
    Object.assign(secretsToFind, {
      password: text(password),
      master,
      authHash: deriveSubkey(master, "auth"),
      accountKey,
      privateKey,
      token: text(stored.token),
      totpSecret: fromBase32(secret),
      totpSecretBase32: text(secret),
      ...Object.fromEntries(backupCodes.map((backup, index) => [`backup code ${index}`, text(backup)])),
    });
    // The scan itself runs last, once the server has stopped and saved its snapshots.
  }, 60_000);

  it(
    "with TOTP on, a session and the password are not enough to change the password or delete the account",
    async () => {
      const as = ["--profile", "rita"];
      const lines = (...given: string[]) => new TextEncoder().encode(given.join("\n") + "\n");
      await runVeil(["register", "rita", "--password-stdin", ...as], { env: env(), stdin: lines(password) });
      const { secret } = JSON.parse((await runVeil(["otp", "enable", "--json", ...as], { env: env() })).stdout) as {
        secret: string;
      };
      const code = totp(fromBase32(secret), clock.now());
      const confirmed = await runVeil(["otp", "enable", "--json", "--password-stdin", "--code", code, ...as], {
        env: env(),
        stdin: lines(password),
      });
      const { backupCodes } = JSON.parse(confirmed.stdout) as { backupCodes: string[] };
      const next = "a wider and slower river";

      const bare = await runVeil(["passwd", "--password-stdin", ...as], { env: env(), stdin: lines(password, next) });
      expect(bare.code).toBe(10);
      expect(bare.stderr).toMatch(/needs a TOTP code/);
      skewMs += limits.loginDelayMaxMs;
      const changed = await runVeil(["passwd", "--password-stdin", "--otp", backupCodes[0]!, ...as], {
        env: env(),
        stdin: lines(password, next),
      });
      expect(changed.stderr).toBe("");
      expect(changed.stdout).toMatch(/password changed for rita/);

      // The backup code the change used is spent; deleting needs another.
      const reused = await runVeil(["delete-account", "--password-stdin", "--otp", backupCodes[0]!, ...as], {
        env: env(),
        stdin: lines(next),
      });
      expect(reused.code).toBe(10);
      expect(reused.stderr).toMatch(/wrong or already used backup code/);
      skewMs += limits.loginDelayMaxMs;
      const deleted = await runVeil(["delete-account", "--password-stdin", "--otp", backupCodes[1]!, ...as], {
        env: env(),
        stdin: lines(next),
      });
      expect(deleted.stderr).toBe("");
      expect(deleted.stdout).toMatch(/deleted rita/);
      expect((await userEvents("rita")).map((event) => event.type)).toEqual(
        expect.arrayContaining(["PasswordChanged", "UserDeleted"]),
      );
    },
    60_000,
  );

  it("logs in the same way on Deno", async () => {
    await client.register("oscar", password);
    const started = Date.now();
    const ran = await runVeil(["login", "oscar", "--password-stdin", "--profile", "deno"], {
      env: env(),
      stdin: new TextEncoder().encode(password + "\n"),
      runtime: "deno",
      // Deno's first start in a fresh checkout, on a machine busy with the other test files, can be slow.
      timeoutMs: 60_000,
    });
    expect(ran.code, `after ${Date.now() - started} ms; stdout ${ran.stdout}; stderr ${ran.stderr}`).toBe(0);
    expect(ran.stderr).toBe("");
    expect(ran.stdout).toMatch(/logged in as oscar/);
    expect((await runVeil(["whoami", "--profile", "deno"], { env: env() })).stdout).toMatch(/^oscar /);
  }, 75_000);

  it("registers with an email and says to log in with the code mailed there", async () => {
    const ran = await runVeil([
      "register",
      "pat",
      "--email",
      "pat@example.test",
      "--password-stdin",
      "--profile",
      "pat",
    ], {
      env: env(),
      stdin: new TextEncoder().encode(password + "\n"),
    });
    expect(ran.code).toBe(0);
    expect(ran.stdout).toMatch(
      /registered pat\na one-time code was emailed to you; log in with: veil login pat --otp CODE/,
    );
    const mail = await smtp.waitFor((received) => received.to.includes("pat@example.test"), 10_000);
    const code = /login code is (\d{6})/.exec(mail.raw)![1]!;
    const loggedIn = await runVeil(["login", "pat", "--password-stdin", "--otp", code, "--profile", "pat"], {
      env: env(),
      stdin: new TextEncoder().encode(password + "\n"),
    });
    expect(loggedIn.stdout).toMatch(/logged in as pat/);
  }, 40_000);

  it("answers bad usernames and weak passwords clearly, before anything is sent", async () => {
    for (const name of ["../etc", "аlice", "a b", ""]) {
      const ran = await runVeil(["register", name, "--password-stdin"], {
        env: env(),
        stdin: new TextEncoder().encode(password + "\n"),
      });
      expect(ran.code, name).toBe(2);
      expect(ran.stderr).toMatch(/a username is 3 to 32 characters/);
    }
    const weak = await runVeil(["register", "dave", "--password-stdin"], {
      env: env(),
      stdin: new TextEncoder().encode("short\n"),
    });
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/at least 10 characters/);
    expect(await userEvents("dave")).toEqual([]);
  }, 30_000);
});

describe("logging in", () => {
  const password = "seven silver spoons";

  it("a stolen log logs nobody in: the stored verifier is not the login hash", async () => {
    await client.register("erin", password);
    const registration = (await userEvents("erin"))[0]!;
    if (registration.type !== "UserRegistered") throw new Error("unreachable");
    // Replaying what the log holds, in place of the hash only the password gives:
    for (const candidate of [registration.data.verifier, registration.data.publicKey]) {
      const error = await refusal(client.login("erin", "wrong but irrelevant", { authHash: candidate }));
      expect(error.code).toBe("unauthenticated");
    }
    // The wrapped account key does not open with anything the log holds either.
    for (
      const candidate of [registration.data.verifier, registration.data.verifierSalt, registration.data.passwordSalt]
    ) {
      const kek = deriveSubkey(new Uint8Array([...candidate, ...candidate]).subarray(0, 32), "account-key");
      expect(() => unwrapKey(kek, registration.data.accountKeyWrapped, "account-key:erin")).toThrow(/does not open/);
    }
    expect((await client.login("erin", password)).token).toMatch(/^[A-Za-z0-9_-]{43}$/);
  }, 30_000);

  it("answers the first step of a login for a name nobody holds like for a real one", async () => {
    type Salt = { passwordSalt: Uint8Array; passwordKdf: object };
    const real = await client.call<Salt>("user.prelogin", { user: "erin" });
    const ghost = await client.call<Salt>("user.prelogin", { user: "nobody-at-all" });
    expect(ghost.passwordSalt.byteLength).toBe(real.passwordSalt.byteLength);
    expect(ghost.passwordKdf).toEqual(real.passwordKdf);
    // Stable, so asking twice does not tell a made-up salt from a stored one.
    expect(await client.call<Salt>("user.prelogin", { user: "nobody-at-all" })).toEqual(ghost);
  });

  it("gives each failure its own clear error", async () => {
    await client.register("frank", password);
    const wrong = await refusal(client.login("frank", "not the password at all"));
    expect(wrong.message).toBe("wrong username or password");
    // The reply's code comes back as the typed error, so clients can tell refusals apart.
    expect(wrong).toBeInstanceOf(AuthenticationError);
    expect((await refusal(client.login("nobody-here", password))).message).toBe("wrong username or password");

    const session = await client.login("frank", password);
    const auth = { user: "frank", token: session.token };
    // Past its time by more than clocks may differ (limits.clockSkewMaxMs): over, whichever server judges it.
    skewMs += sessionTtlMs + limits.clockSkewMaxMs;
    expect((await refusal(client.call("user.whoami", auth))).message).toMatch(/session has expired/);
    skewMs += limits.loginDelayMaxMs;

    const second = await client.login("frank", password);
    const other = await client.login("frank", password);
    await client.call("user.revoke", { user: "frank", token: other.token, session: second.session });
    expect((await refusal(client.call("user.whoami", { user: "frank", token: second.token }))).message).toMatch(
      /not logged in/,
    );
    // A token is good for its own user only.
    expect((await refusal(client.call("user.whoami", { user: "erin", token: other.token }))).message).toMatch(
      /not logged in/,
    );
    // Another user's session cannot be named, let alone revoked.
    await client.register("grace", password);
    const grace = await client.login("grace", password);
    expect(
      (await refusal(client.call("user.revoke", { user: "grace", token: grace.token, session: other.session })))
        .code,
    ).toBe("not-found");
    expect(await client.call("user.whoami", { user: "frank", token: other.token })).toMatchObject({ user: "frank" });
  }, 60_000);

  it("runs concurrent logins of one user as separate sessions, none lost", async () => {
    await client.register("heidi", password);
    await client.authHashFor("heidi", password);
    const sessions = await Promise.all(Array.from({ length: 4 }, () => client.login("heidi", password)));
    expect(new Set(sessions.map((session) => session.session)).size).toBe(4);
    const started = (await userEvents("heidi")).filter((event) => event.type === "SessionStarted");
    expect(started.map((event) => event.data.user === "heidi" && (event.data as { session: string }).session).sort())
      .toEqual(sessions.map((session) => session.session).sort());
  }, 60_000);

  it("withstands a flood of wrong logins: typed refusals, few recorded, the server still answers", async () => {
    await client.register("ivan", password);
    const wrong = await client.authHashFor("ivan", "not ivan's password");
    const attempt = (user: string) =>
      refusal(client.call("user.login", {
        user,
        authHash: wrong,
        deviceId: new Uint8Array(32),
        deviceName: "flood",
        address: "10.9.8.7",
      }));
    const errors = await Promise.all([
      ...Array.from({ length: 60 }, () => attempt("ivan")),
      ...Array.from({ length: 20 }, (_, index) => attempt(`ghost-${index}`)),
    ]);
    for (const error of errors) expect(["unauthenticated", "busy"]).toContain(error.code);
    expect(errors.filter((error) => error.code === "busy").length).toBeGreaterThan(0);
    const failures = (await userEvents("ivan")).filter((event) => event.type === "LoginFailed");
    expect(failures.length).toBeGreaterThan(0);
    expect(failures.length).toBeLessThan(limits.loginFailuresLock);
    // The address is throttled too, whichever name it tries next.
    expect((await attempt("grace")).code).toBe("busy");
    expect(await sendCommand(natsBus(nats.nc, silentLogger), "cluster.nodes")).toMatchObject({
      answeredBy: expect.stringMatching(/^accounts-/),
    });
    skewMs += limits.loginDelayMaxMs;
  }, 60_000);

  it(
    "keeps a lane for known devices: a flood of logins for unknown names does not refuse a returning user",
    async () => {
      await client.register("lane", password);
      const laptop = cryptoRandom.bytes(32);
      await client.login("lane", password, { device: laptop, address: "10.1.1.1" });
      const authHash = await client.authHashFor("lane", password);
      let release = () => {};
      held = new Promise((resolve) => (release = resolve));
      hashesHeld = 0;
      const heldReach = (count: number) =>
        new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`only ${hashesHeld} of ${count} hashes started`)), 20_000);
          onHashHeld = () => {
            if (hashesHeld >= count) clearTimeout(timer), resolve();
          };
          onHashHeld();
        });
      try {
        // Names nobody holds, each from its own address, until the server's lane is full.
        const ghosts = Array.from(
          { length: limits.slowHashesInFlightMax + 4 },
          (_, index) =>
            // Held, then hashed one after another on a busy machine: more than a login's usual wait.
            refusal(sendCommand(natsBus(nats.nc, silentLogger), "user.login", {
              user: `ghost-lane-${index}`,
              authHash,
              deviceId: cryptoRandom.bytes(32),
              deviceName: "flood",
              address: `10.1.2.${index + 1}`,
            }, { timeoutMs: 50_000 })),
        );
        await heldReach(limits.slowHashesInFlightMax);
        const returning = client.login("lane", password, { device: laptop, address: "10.1.1.2" });
        await heldReach(limits.slowHashesInFlightMax + 1);
        const newDevice = await refusal(
          client.login("lane", password, { device: cryptoRandom.bytes(32), address: "10.1.1.3" }),
        );
        expect(newDevice.code).toBe("busy");
        release();
        expect(await returning).toMatchObject({ user: "lane" });
        const codes = (await Promise.all(ghosts)).map((error) => error.code);
        expect(codes.filter((code) => code === "busy")).toHaveLength(4);
        expect(codes.filter((code) => code === "unauthenticated")).toHaveLength(limits.slowHashesInFlightMax);
      } finally {
        held = undefined;
        release();
      }
    },
    90_000,
  );

  it("lets a stranger who knows only the name lock new devices out, never the user's own", async () => {
    await client.register("kate", password);
    const laptop = cryptoRandom.bytes(32);
    await client.login("kate", password, { device: laptop, address: "10.2.1.1" });
    const wrong = await client.authHashFor("kate", "a stranger's guess");
    // Each guess from a device of its own and an address of its own, after the delay the last one earned.
    for (let guess = 0; guess < limits.loginFailuresLock; guess++) {
      skewMs += limits.loginDelayMaxMs;
      const error = await refusal(
        client.login("kate", "a stranger's guess", {
          authHash: wrong,
          device: cryptoRandom.bytes(32),
          address: `10.2.2.${guess + 1}`,
        }),
      );
      expect(error.code).toBe("unauthenticated");
    }
    const lock = (await userEvents("kate")).find((event) => event.type === "AccountLocked");
    expect(lock?.data).toMatchObject({ lane: "open" });
    skewMs += limits.loginDelayMaxMs;
    // Even with the right password, a new device waits for the lock; the laptop gets in.
    const newDevice = await refusal(
      client.login("kate", password, { device: cryptoRandom.bytes(32), address: "10.2.3.1" }),
    );
    expect(newDevice.code).toBe("busy");
    expect(await client.login("kate", password, { device: laptop, address: "10.2.1.1" })).toMatchObject({
      user: "kate",
    });
    skewMs += limits.accountLockMs;
  }, 60_000);

  it("keeps the user's own device clear of what strangers at the same address do (a shared NAT)", async () => {
    await client.register("nat", password);
    const laptop = cryptoRandom.bytes(32);
    const shared = "10.3.1.1";
    await client.login("nat", password, { device: laptop, address: shared });
    const ghostAt = (index: number) =>
      refusal(client.call("user.login", {
        user: `ghost-nat-${index}`,
        authHash: new Uint8Array(32),
        deviceId: cryptoRandom.bytes(32),
        deviceName: "stranger",
        address: shared,
      }));
    let release = () => {};
    held = new Promise((resolve) => (release = resolve));
    hashesHeld = 0;
    const heldReach = (count: number) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${hashesHeld} of ${count} hashes started`)), 20_000);
        onHashHeld = () => {
          if (hashesHeld >= count) clearTimeout(timer), resolve();
        };
        onHashHeld();
      });
    try {
      // Strangers fill the address's slots; a new device there is refused, the laptop is not.
      const ghosts = Array.from({ length: limits.loginsInFlightPerAddressMax }, (_, index) => ghostAt(index));
      await heldReach(limits.loginsInFlightPerAddressMax);
      expect((await refusal(client.login("nat", password, { device: cryptoRandom.bytes(32), address: shared }))).code)
        .toBe("busy");
      const returning = client.login("nat", password, { device: laptop, address: shared });
      await heldReach(limits.loginsInFlightPerAddressMax + 1);
      release();
      expect(await returning).toMatchObject({ user: "nat" });
      for (const error of await Promise.all(ghosts)) expect(error.code).toBe("unauthenticated");
    } finally {
      held = undefined;
      release();
    }
    // Their failures slow the address down for new devices, never for the laptop.
    expect((await ghostAt(99)).code).toBe("busy");
    expect((await refusal(client.login("nat", password, { device: cryptoRandom.bytes(32), address: shared }))).code)
      .toBe("busy");
    expect(await client.login("nat", password, { device: laptop, address: shared })).toMatchObject({ user: "nat" });
    skewMs += limits.loginDelayMaxMs;
  }, 60_000);

  it("lets one account hold only its share of the known devices' lane, and only so many logins a minute", async () => {
    await client.register("greedy", password);
    const device = cryptoRandom.bytes(32);
    await client.login("greedy", password, { device, address: "10.4.1.1" });
    const authHash = await client.authHashFor("greedy", password);
    const again = () => client.login("greedy", password, { device, authHash, address: "10.4.1.1" });
    let release = () => {};
    held = new Promise((resolve) => (release = resolve));
    hashesHeld = 0;
    try {
      // Its own slots hold two; every other login of the minute is refused at once, and counted.
      const running = Array.from({ length: limits.knownDeviceLoginsInFlightPerUserMax }, () => again());
      for (let login = running.length; login < limits.knownDeviceLoginsPerUserPerMinuteMax; login++) {
        expect((await refusal(again())).message).toMatch(/too many logins in progress/);
      }
      expect(hashesHeld).toBe(limits.knownDeviceLoginsInFlightPerUserMax);
      const refused = await refusal(again());
      expect(refused.code).toBe("busy");
      expect(refused.message).toMatch(/too many logins for this account in the last minute/);
      held = undefined;
      release();
      for (const session of await Promise.all(running)) expect(session).toMatchObject({ user: "greedy" });
    } finally {
      held = undefined;
      release();
    }
    skewMs += 60_000;
    expect(await again()).toMatchObject({ user: "greedy" });
  }, 60_000);

  it("refuses malformed and oversized payloads and writes nothing", async () => {
    const before = await nats.log.lastSeq();
    const bad: [string, unknown][] = [
      ["user.register", "not a map"],
      ["user.register", { user: "../../etc", authHash: new Uint8Array(32) }],
      ["user.register", {
        user: "mallory",
        passwordSalt: new Uint8Array(16),
        passwordKdf: { N: 2 ** 30, r: 8, p: 1 },
        authHash: new Uint8Array(32),
        accountKeyWrapped: new Uint8Array(73),
        privateKeyWrapped: new Uint8Array(73),
        publicKey: new Uint8Array(32),
      }],
      ["user.register", {
        user: "mallory",
        passwordSalt: new Uint8Array(16),
        passwordKdf: { N: 2 ** 17, r: 8, p: 1 },
        authHash: new Uint8Array(32),
        accountKeyWrapped: new Uint8Array(100_000),
        privateKeyWrapped: new Uint8Array(73),
        publicKey: new Uint8Array(32),
      }],
      ["user.login", { user: "a\u0000b", authHash: new Uint8Array(32), deviceId: new Uint8Array(32), deviceName: "" }],
      ["user.login", { user: "erin", authHash: "x".repeat(10_000), deviceId: new Uint8Array(32), deviceName: "" }],
      ["user.login", { user: "x".repeat(300), authHash: new Uint8Array(32), deviceId: new Uint8Array(32) }],
      ["user.whoami", { user: "erin", token: "short" }],
      ["user.prelogin", { user: "Erin" }],
      ["user.otp.enable", [1, 2, 3]],
    ];
    for (const [name, data] of bad) {
      const error = await refusal(client.call(name, data));
      expect(error.code, `${name} ${JSON.stringify(data).slice(0, 60)}`).toBe("validation");
    }
    expect(await nats.log.lastSeq()).toBe(before);
  }, 30_000);
});

describe("notifications", () => {
  const password = "nine quiet harbours";

  it("mails a code to a user with an email, alerts a new device, and says when the account locks", async () => {
    await client.register("judy", password, "judy@example.test");
    const toJudy = (mail: { to: string[] }) => mail.to.includes("judy@example.test");
    // A user with an email and no TOTP logs in with a code sent to it.
    expect((await refusal(client.login("judy", password))).message).toMatch(/emailed to you/);
    const codeMail = await smtp.waitFor((mail) => toJudy(mail) && /your login code/.test(mail.raw), 10_000);
    expect(codeMail.to).toEqual(["judy@example.test"]);
    const code = /login code is (\d{6})/.exec(codeMail.raw)![1]!;
    Object.assign(secretsToFind, { email: text("judy@example.test"), emailCode: text(`code is ${code}`) });
    expect((await refusal(client.login("judy", password, { otp: "000000" }))).message).toMatch(/wrong emailed code/);
    await client.login("judy", password, { otp: code });
    expect((await refusal(client.login("judy", password, { otp: code }))).message).toMatch(/emailed to you|expired/);

    // A second device: the login needs a fresh code, and raises an alert.
    skewMs += limits.loginDelayMaxMs;
    expect((await refusal(client.login("judy", password, { device: new Uint8Array(32).fill(7) }))).message).toMatch(
      /emailed/,
    );
    const second = await smtp.waitFor(
      (mail) => toJudy(mail) && /your login code/.test(mail.raw) && !mail.raw.includes(code),
      10_000,
    );
    const secondCode = /login code is (\d{6})/.exec(second.raw)![1]!;
    secretsToFind.secondEmailCode = text(`code is ${secondCode}`);
    await client.login("judy", password, { otp: secondCode, device: new Uint8Array(32).fill(7) });
    const alert = await smtp.waitFor((mail) => toJudy(mail) && /new device/.test(mail.raw), 10_000);
    expect(alert.raw).toMatch(/test device/);

    // Failures until the lock, each after its delay: then a lock notice.
    const wrong = await client.authHashFor("judy", "certainly not judy's");
    for (let failure = 0; failure < limits.loginFailuresLock; failure++) {
      skewMs += limits.loginDelayMaxMs;
      await refusal(client.login("judy", "certainly not judy's", { authHash: wrong }));
    }
    expect((await userEvents("judy")).some((event) => event.type === "AccountLocked")).toBe(true);
    skewMs += limits.loginDelayMaxMs;
    // Locked: the wait is the lock's (minutes), not a throttle's (at most a minute).
    const lockedOut = await refusal(client.login("judy", password, { otp: "123456" }));
    expect(Number(/try again in (\d+) s/.exec(lockedOut.message)?.[1])).toBeGreaterThan(limits.loginDelayMaxMs / 1_000);
    const locked = await smtp.waitFor((mail) => toJudy(mail) && /locked/.test(mail.raw), 10_000);
    expect(locked.to).toEqual(["judy@example.test"]);
    // Nothing secret in the mails' record in the log: only which notification went out.
    const sent = (await userEvents("judy")).filter((event) => event.type === "NotificationSent");
    expect(sent.length).toBeGreaterThanOrEqual(3);
    skewMs += limits.accountLockMs;
  }, 90_000);
});

describe("TOTP under concurrency", () => {
  it("lets one of several concurrent logins with the same code in, and refuses the rest", async () => {
    const password = "four winds over hills";
    await client.register("kim", password);
    const session = await client.login("kim", password);
    const secret = cryptoRandom.bytes(20);
    await client.call("user.otp.enable", {
      user: "kim",
      token: session.token,
      authHash: await client.authHashFor("kim", password),
      secret,
      code: totp(secret, clock.now()),
    });
    skewMs += limits.totpStepMs;
    const code = totp(secret, clock.now());
    const outcomes = await Promise.allSettled(
      Array.from({ length: 4 }, () => client.login("kim", password, { otp: code })),
    );
    expect(outcomes.filter((outcome) => outcome.status === "fulfilled")).toHaveLength(1);
    // A known device holds at most two of the account's login slots, so some of the four may
    // be turned away before they reach the code; of those let in, one wins and the other is
    // refused for the code.
    const refusals = outcomes.flatMap((outcome) =>
      outcome.status === "rejected" ? [(outcome.reason as Error).message] : []
    );
    for (const message of refusals) expect(message).toMatch(/already used|try again|logins in progress/);
    expect(refusals.filter((message) => /already used|try again/.test(message)).length).toBeGreaterThan(0);
    const started = (await userEvents("kim")).filter((event) => event.type === "SessionStarted");
    expect(started.filter((event) => (event.data as { totpStep?: number }).totpStep !== undefined)).toHaveLength(1);
    skewMs += limits.loginDelayMaxMs;
  }, 60_000);
});

describe("two servers", () => {
  it("share sessions: a login on one is good on the other, and a logout ends it on both at once", async () => {
    const second = await startAccountsServer("accounts-2");
    try {
      expect(await second.live).toBe(true);
      const password = "twelve paper lanterns";
      await client.register("lena", password);
      const session = await client.login("lena", password);
      const auth = { user: "lena", token: session.token };
      // The queue group spreads these over both servers; every one sees the session at once.
      const checks = await Promise.all(Array.from({ length: 20 }, () => client.call("user.whoami", auth)));
      for (const check of checks) expect(check).toMatchObject({ user: "lena", session: session.session });
      await client.call("user.logout", auth);
      const after = await Promise.all(Array.from({ length: 20 }, () => refusal(client.call("user.whoami", auth))));
      for (const error of after) expect(error.message).toMatch(/not logged in/);
      // And each server's own read model has the session gone too.
      const ended = (projector: HostedServer) =>
        (projector.projectors.get("users")!.state as { users: Record<string, { sessions: object }> }).users.lena;
      expect(ended(server)?.sessions).toEqual({});
      expect(ended(second)?.sessions).toEqual({});
    } finally {
      second.actor.send({ type: "STOP" });
      await second.done;
    }
  }, 60_000);
});

describe("the cluster key", () => {
  it("is recorded by its fingerprint, and a server with another key is refused", async () => {
    const origin = () => ({ id: randomIds.next(), at: Date.now(), by: "test" });
    await checkClusterKey(nats.log, clusterKey, origin);
    await checkClusterKey(nats.log, clusterKey, origin);
    await expect(checkClusterKey(nats.log, cryptoRandom.bytes(32), origin)).rejects.toThrow(
      /not the one the cluster uses/,
    );
  });
});

describe("the users projection", () => {
  it("rebuilt from sequence 1 equals the live state", async () => {
    const users = server.projectors.get("users")!;
    await users.waitFor(await nats.log.lastSeq(), 5_000);
    const rebuilt = await projectUntil({ log: nats.log, projection: usersProjection, logger: silentLogger });
    expect(rebuilt.state).toEqual(users.state);
    expect(Object.keys((rebuilt.state as { users: object }).users)).toContain("judy");
  });
});

describe("after the server has stopped and saved its snapshots", () => {
  it("no secret is anywhere on the broker (events, cluster traffic, snapshots) or in a log line", async () => {
    server.actor.send({ type: "STOP" });
    await server.done;
    const messages = await everyStoredMessage();
    const streams = new Set(messages.map((message) => message.stream));
    expect([...streams]).toEqual(expect.arrayContaining(["VEIL_EVENTS", "VEIL_CLUSTER", "KV_veil_snapshots"]));
    // The snapshots hold the users projection: the place a careless projection would keep a secret.
    const snapshotBytes = messages.filter((message) => message.stream === "KV_veil_snapshots");
    expect(snapshotBytes.some((message) => contains(message.bytes, text("judy")))).toBe(true);
    expect(Object.keys(secretsToFind)).toEqual(
      expect.arrayContaining(["password", "accountKey", "token", "totpSecret", "email", "emailCode", "clusterKey"]),
    );
    for (const [name, bytes] of Object.entries(secretsToFind)) {
      const where = messages.filter((message) => contains(message.bytes, bytes));
      expect(where.map((message) => `${message.stream}#${message.seq}`), name).toEqual([]);
      expect(logLines.filter((line) => contains(text(line), bytes)), `${name} in a log line`).toEqual([]);
    }
    // Nor where anyone logged in from: addresses and device names are sealed (a flood's address is only hashed).
    const cliDevice = `${hostname().slice(0, 40)} (${process.platform})`;
    for (const place of ["10.9.8.7", "127.0.0.1", cliDevice, "test device"]) {
      const where = messages.filter((message) => contains(message.bytes, text(place)));
      expect(where.map((message) => `${message.stream}#${message.seq}`), place).toEqual([]);
    }
  }, 60_000);
});
