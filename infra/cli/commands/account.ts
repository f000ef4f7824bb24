/**
 * Account commands: register, login, logout, whoami, passwd, sessions, otp, delete-account.
 * The password is read from a no-echo prompt or `--password-stdin`, turned into keys on
 * this machine, and never sent: the cluster gets only the authentication hash and keys
 * wrapped by the password (see actors/peer/account.ts).
 */
import process from "node:process";
import { type Command, Option } from "commander";
import {
  authHash,
  newAccountKeys,
  normaliseUsername,
  openAccountKeys,
  passwordProblem,
  passwordSaltBytes,
  sealCredentials,
} from "../../../actors/peer/account.ts";
import { passwordKdf, type ScryptParameters } from "../../../actors/crypto/mod.ts";
import { fromBase32, otpauthUri, toBase32 } from "../../../actors/server/accounts/totp.ts";
import { toBase64Url } from "../../../actors/server/accounts/secrets.ts";
import type { Bus } from "../../../actors/ports.ts";
import {
  AuthenticationError,
  keysReply,
  limits,
  loginReply,
  otpEnableReply,
  otpStatusReply,
  preloginReply,
  sessionsReply,
  ValidationError,
  whoamiReply,
} from "../../../events/mod.ts";
import { cryptoRandom } from "../../random.ts";
import { startCryptoActor } from "../../workers/actors.ts";
import { withConnection } from "../client.ts";
import { printLine, toJson } from "../format.ts";
import type { Profile } from "../profile.ts";
import { readPassphrase } from "../prompt.ts";
import { call, profileOf, profileOption, withSession } from "../session.ts";
import { table } from "../render.ts";

const print = printLine;
/** Steps of slow work, on stderr and only for a person at a terminal. */
const step = (line: string) => process.stderr.isTTY && process.stderr.write(`${line}\n`);
const iso = (ms: number | null) => (ms === null ? "never" : new Date(ms).toISOString());

/**
 * The password's master key, from scrypt in a worker (memory-hard on purpose, so it takes a
 * moment). Parameters from the cluster weaker than veil's own are refused: a server that
 * lowered them could then guess the password from the hash it receives.
 */
async function masterKey(password: string, salt: Uint8Array, kdf: ScryptParameters): Promise<Uint8Array> {
  if (kdf.N < passwordKdf.N || kdf.r < passwordKdf.r || kdf.p < passwordKdf.p) {
    throw new ValidationError(
      `the cluster asked for a weaker password hash (scrypt N=${kdf.N}, r=${kdf.r}, p=${kdf.p}) than veil allows; not sending anything`,
    );
  }
  step("deriving keys from the password (scrypt, memory-hard on purpose)...");
  const crypto = startCryptoActor({ size: 1 });
  try {
    return await crypto.derivePasswordKey(password, salt, kdf);
  } finally {
    await crypto.stop();
  }
}

/** The password (or another one, by `label`), from a no-echo prompt or the next line of stdin. */
const readPassword = (fromStdin: boolean | undefined, label = "password", confirm = false) =>
  readPassphrase({ fromStdin, confirm, label, stdinFlag: "--password-stdin" });

async function newPassword(user: string, fromStdin: boolean | undefined, label = "password"): Promise<string> {
  const password = await readPassword(fromStdin, label, true);
  const problem = passwordProblem(password, user);
  if (problem) throw new ValidationError(problem);
  return password;
}

const passwordStdinOption = () =>
  new Option("--password-stdin", "read the password from the first line of stdin instead of a prompt");

/** Logs in with an already derived master key, checks the returned keys open, and stores the session. */
async function logIn(options: {
  bus: Bus;
  address: string | undefined;
  user: string;
  master: Uint8Array;
  otp?: string;
  profile: Profile;
}) {
  const { bus, user, master, profile } = options;
  const device = await profile.device();
  const reply = await call(bus, "user.login", {
    user,
    authHash: authHash(master),
    ...(options.otp ? { otp: options.otp } : {}),
    deviceId: device.id,
    deviceName: device.name,
    ...(options.address ? { address: options.address } : {}),
  }, loginReply);
  // The account keys must open with this password: a cluster handing out someone else's would show here.
  const keys = openAccountKeys({ ...reply, user, master });
  await profile.save({
    user,
    token: reply.token,
    session: reply.session,
    expiresAt: reply.expiresAt,
    accountKey: toBase64Url(keys.accountKey),
    privateKey: toBase64Url(keys.privateKey),
  });
  return reply;
}

export function registerAccount(program: Command): void {
  program
    .command("register")
    .description("create an account (the password never leaves this machine) and log in")
    .argument("<user>", `3 to ${limits.usernameLengthMax} of a-z 0-9 _ -, starting with a letter`)
    .option("--email <address>", "for alerts (new device, locked account) and emailed one-time codes")
    .addOption(passwordStdinOption())
    .addOption(profileOption())
    .action(async (name: string, options: { email?: string; passwordStdin?: boolean; profile?: string }) => {
      const user = normaliseUsername(name);
      const profile = profileOf(options);
      const password = await newPassword(user, options.passwordStdin);
      const passwordSalt = cryptoRandom.bytes(passwordSaltBytes);
      const master = await masterKey(password, passwordSalt, passwordKdf);
      const keys = newAccountKeys(cryptoRandom);
      const credentials = sealCredentials({ user, master, passwordSalt, passwordKdf, keys, random: cryptoRandom });
      await withConnection(async ({ nc, bus }) => {
        await call(bus, "user.register", {
          user,
          ...credentials,
          publicKey: keys.publicKey,
          ...(options.email ? { email: options.email } : {}),
          ...(nc.info?.client_ip ? { address: nc.info.client_ip } : {}),
        });
        print(`registered ${user}`);
        try {
          const session = await logIn({ bus, address: nc.info?.client_ip, user, master, profile });
          print(`logged in as ${user} (session ${session.session}, until ${iso(session.expiresAt)})`);
        } catch (error) {
          // An account with an email logs in with a code sent to it: say how, this is not a failure.
          if (!(error instanceof AuthenticationError) || !/emailed/.test(error.message)) throw error;
          print(`a one-time code was emailed to you; log in with: veil login ${user} --otp CODE`);
        }
      });
    });

  program
    .command("login")
    .description("log in; the session is kept in VEIL_HOME (mode 0600) until it expires or you log out")
    .argument("<user>", "your username")
    .option("--otp <code>", "a TOTP code, a backup code, or the code emailed to you")
    .addOption(passwordStdinOption())
    .addOption(profileOption())
    .action(async (name: string, options: { otp?: string; passwordStdin?: boolean; profile?: string }) => {
      const user = normaliseUsername(name);
      const profile = profileOf(options);
      const password = await readPassword(options.passwordStdin);
      await withConnection(async ({ nc, bus }) => {
        const salt = await call(
          bus,
          "user.prelogin",
          { user },
          preloginReply,
        );
        const master = await masterKey(password, salt.passwordSalt, salt.passwordKdf);
        const session = await logIn({ bus, address: nc.info?.client_ip, user, master, otp: options.otp, profile });
        print(`logged in as ${user} (session ${session.session}, until ${iso(session.expiresAt)})`);
      });
    });

  program
    .command("logout")
    .description("end this session (or every session of yours with --all)")
    .option("--all", "end every session of this user, on every device")
    .addOption(profileOption())
    .action(async (options: { all?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session, profile }) => {
        await call(bus, "user.logout", { ...session, all: options.all === true });
        await profile.forget();
        print(options.all ? `logged out ${session.user} everywhere` : `logged out ${session.user}`);
      });
    });

  program
    .command("whoami")
    .description("who this session belongs to, when it expires, and the last login")
    .option("--json", "print it as JSON")
    .addOption(profileOption())
    .action(async (options: { json?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        const me = await call(bus, "user.whoami", session, whoamiReply);
        if (options.json) return print(toJson(me));
        print(`${me.user} (session ${me.session}, until ${iso(me.expiresAt)})`);
        print(`this session: ${me.device || "unnamed device"}${me.address ? ` from ${me.address}` : ""}`);
        print(`previous login: ${iso(me.previousLoginAt)}; open sessions: ${me.sessions}`);
        print(`second factor: ${me.totp ? "TOTP" : me.email ? "emailed codes" : "none"}`);
        print(`your key: ${me.keyFingerprint} (what \`veil approve\` shows to whoever grants you something)`);
      });
    });

  program
    .command("sessions")
    .description("list your open sessions, or revoke one")
    .option("--json", "print the list as JSON")
    .option("--revoke <session>", "end that session (on whichever device holds it)")
    .addOption(profileOption())
    .action(async (options: { json?: boolean; revoke?: string; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        if (options.revoke) {
          await call(bus, "user.revoke", { ...session, session: options.revoke });
          return print(`revoked session ${options.revoke}`);
        }
        const reply = await call(bus, "user.sessions", session, sessionsReply);
        if (options.json) return print(toJson(reply.sessions));
        const rows = reply.sessions.map((open) => [
          open.session + (open.current ? " *" : ""),
          open.device,
          open.address ?? "",
          iso(open.startedAt),
          open.expired ? "expired" : iso(open.expiresAt),
        ]);
        for (const line of table([["SESSION", "DEVICE", "ADDRESS", "STARTED", "EXPIRES"], ...rows])) print(line);
      });
    });

  program
    .command("passwd")
    .description("change your password: the account keys are re-wrapped, your other sessions end")
    .addOption(
      new Option("--password-stdin", "read the current password, then the new one, from the first two lines of stdin"),
    )
    .option("--otp <code>", "with TOTP on: a fresh TOTP code or a backup code (a session and password are not enough)")
    .addOption(profileOption())
    .action(async (options: { passwordStdin?: boolean; profile?: string; otp?: string }) => {
      const current = await readPassword(options.passwordStdin, "current password");
      await withSession(options, async ({ bus, session }) => {
        const next = await newPassword(session.user, options.passwordStdin, "new password");
        const wrapped = await call(bus, "user.keys", session, keysReply);
        const oldMaster = await masterKey(current, wrapped.passwordSalt, wrapped.passwordKdf);
        let keys;
        try {
          keys = openAccountKeys({ user: session.user, master: oldMaster, ...wrapped });
        } catch {
          throw new AuthenticationError("the current password is wrong");
        }
        const passwordSalt = cryptoRandom.bytes(passwordSaltBytes);
        const newMaster = await masterKey(next, passwordSalt, passwordKdf);
        const credentials = sealCredentials({
          user: session.user,
          master: newMaster,
          passwordSalt,
          passwordKdf,
          keys,
          random: cryptoRandom,
        });
        await call(bus, "user.passwd", {
          ...session,
          authHash: authHash(oldMaster),
          next: credentials,
          ...(options.otp ? { otp: options.otp } : {}),
        });
        print(`password changed for ${session.user}; your other sessions have ended`);
      });
    });

  const otp = program.command("otp").description("TOTP, the second factor from an authenticator app");
  otp
    .command("enable")
    .description("step 1: show a new secret to add to your app; step 2: confirm with --code")
    .option("--code <code>", "the app's current 6-digit code for the secret shown in step 1 (asks for your password)")
    .option("--json", "print {secret, uri} (step 1) or {backupCodes} (step 2) as JSON")
    .addOption(passwordStdinOption())
    .addOption(profileOption())
    .action(async (options: { code?: string; json?: boolean; passwordStdin?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session, profile }) => {
        const stored = await profile.session();
        if (!options.code) {
          const secret = cryptoRandom.bytes(limits.totpSecretBytes);
          await profile.save({ ...stored, pendingTotpSecret: toBase32(secret) });
          const uri = otpauthUri("veil", session.user, secret);
          if (options.json) return print(toJson({ secret: toBase32(secret), uri }));
          print(`add this secret to your authenticator app (or open the URI):`);
          print(`  secret  ${toBase32(secret)}`);
          print(`  uri     ${uri}`);
          print(`then confirm with: veil otp enable --code <6-digit code>`);
          return;
        }
        if (!stored.pendingTotpSecret) throw new ValidationError("run `veil otp enable` first to get a secret");
        // A second factor is turned on only by someone who knows the password, not by a stolen session.
        const password = await readPassword(options.passwordStdin);
        const salt = await call(bus, "user.keys", session, preloginReply);
        const master = await masterKey(password, salt.passwordSalt, salt.passwordKdf);
        const reply = await call(bus, "user.otp.enable", {
          ...session,
          authHash: authHash(master),
          secret: fromBase32(stored.pendingTotpSecret),
          code: options.code,
        }, otpEnableReply);
        const { pendingTotpSecret: _done, ...rest } = stored;
        await profile.save(rest);
        if (options.json) return print(toJson(reply));
        print("TOTP is on: from now on, log in with --otp <code>.");
        print("backup codes (each works once; keep them somewhere safe, they are not shown again):");
        for (const code of reply.backupCodes) print(`  ${code}`);
      });
    });
  otp
    .command("disable")
    .description("turn TOTP off (needs a current code or a backup code)")
    .requiredOption("--otp <code>", "a current TOTP code or a backup code")
    .addOption(profileOption())
    .action(async (options: { otp: string; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        await call(bus, "user.otp.disable", { ...session, otp: options.otp });
        print("TOTP is off");
      });
    });
  otp
    .command("status")
    .description("is TOTP on, and how many backup codes are left")
    .option("--json", "print it as JSON")
    .addOption(profileOption())
    .action(async (options: { json?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        const status = await call(
          bus,
          "user.otp.status",
          session,
          otpStatusReply,
        );
        if (options.json) return print(toJson(status));
        print(status.totp ? `TOTP is on (${status.backupCodesLeft} backup codes left)` : "TOTP is off");
        if (status.emailCodes) print("logins need a code emailed to you");
      });
    });

  program
    .command("delete-account")
    .description("delete your account (needs your password); the name stays taken")
    .addOption(passwordStdinOption())
    .option("--otp <code>", "with TOTP on: a fresh TOTP code or a backup code")
    .addOption(profileOption())
    .action(async (options: { passwordStdin?: boolean; profile?: string; otp?: string }) => {
      const password = await readPassword(options.passwordStdin);
      await withSession(options, async ({ bus, session, profile }) => {
        const wrapped = await call(
          bus,
          "user.keys",
          session,
          preloginReply,
        );
        const master = await masterKey(password, wrapped.passwordSalt, wrapped.passwordKdf);
        await call(bus, "user.delete", {
          ...session,
          authHash: authHash(master),
          ...(options.otp ? { otp: options.otp } : {}),
        });
        await profile.forget();
        print(`deleted ${session.user}`);
      });
    });
}
