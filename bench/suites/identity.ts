/**
 * Accounts on a private nats-server with one in-process server. References measured in
 * the same run: one server-side scrypt in the crypto actor (what a login must cost, on
 * purpose), and a bare NATS request-reply. Figures: a login against that scrypt (what the
 * protocol, the log and the decider add to the hash), logins per second with four in
 * flight against scrypts per second with four in flight, and a session check (whoami)
 * against the bare round trip.
 */
import { authHash, newAccountKeys, passwordSaltBytes, sealCredentials } from "../../actors/peer/account.ts";
import { passwordKdf } from "../../actors/crypto/mod.ts";
import { decodeMessage, encodeMessage, limits } from "../../events/mod.ts";
import { natsBus } from "../../infra/nats/bus.ts";
import { cryptoRandom } from "../../infra/random.ts";
import { sendCommand } from "../../infra/command-client.ts";
import { startCryptoActor } from "../../infra/workers/actors.ts";
import { hostBenchServer, quietLogger as quiet } from "../server.ts";
import { bestSeconds, type Figures, pipelined, round2, type Suite, withPrivateNats } from "../suite.ts";

const users = 4;
/** A subject users' machines may request (a storage node's get) that no node of the bench answers. */
const echoSubject = "veil.store.bench-echo.get";

export const identitySuite: Suite = {
  name: "identity",
  description: "login and session checks against server-side scrypt and a bare NATS round trip",
  run: (report) =>
    withPrivateNats("identity", async ({ nc, client, log }) => {
      const crypto = startCryptoActor({ size: 2 });
      const server = await hostBenchServer({ nodeId: "bench-1", nc, log, crypto });
      try {
        await server.live;
        // The user's side calls from the clients' account, through the broker's service imports.
        const bus = natsBus(client, quiet);
        const call = (name: string, data: unknown) =>
          sendCommand(bus, name, data, { timeoutMs: limits.identityCommandTimeoutMs });
        // Clients derive their keys once; what is timed is the server's side of a login.
        const hashes: Uint8Array[] = [];
        for (let index = 0; index < users; index++) {
          const user = `bench-user-${index}`;
          const passwordSalt = cryptoRandom.bytes(passwordSaltBytes);
          const master = await crypto.derivePasswordKey(`a benchmark password ${index}`, passwordSalt);
          const keys = newAccountKeys(cryptoRandom);
          const credentials = sealCredentials({ user, master, passwordSalt, passwordKdf, keys, random: cryptoRandom });
          await call("user.register", { user, ...credentials, publicKey: keys.publicKey });
          hashes.push(authHash(master));
        }
        const login = (index: number) =>
          call("user.login", {
            user: `bench-user-${index % users}`,
            authHash: hashes[index % users],
            deviceId: new Uint8Array(32),
            deviceName: "bench",
          }) as Promise<{ token: string }>;

        const salt = cryptoRandom.bytes(16);
        const scryptSeconds = await bestSeconds(3, () => crypto.slowHash(hashes[0]!, salt, passwordKdf));
        const loginSeconds = await bestSeconds(5, () => login(0));
        report(
          `login ${(loginSeconds * 1_000).toFixed(0)} ms; one server scrypt ${(scryptSeconds * 1_000).toFixed(0)} ms`,
        );

        const rounds = 8;
        const scryptParallel = await bestSeconds(2, () =>
          pipelined(rounds, users, () => crypto.slowHash(hashes[0]!, salt, passwordKdf)));
        const loginParallel = await bestSeconds(2, () =>
          pipelined(rounds, users, (index) => login(index)));
        report(
          `4 in flight: ${(rounds / loginParallel).toFixed(2)} logins/s, ${
            (rounds / scryptParallel).toFixed(2)
          } scrypts/s`,
        );

        const { token } = await login(1);
        // The bare round trip takes the path a command takes: from the clients' account,
        // through the service import, to a subscriber with a server's identity.
        const echo = nc.subscribe(echoSubject, { callback: (_, message) => void message.respond(message.data) });
        const checks = 200;
        const roundTrip = await bestSeconds(3, async () => {
          for (let index = 0; index < checks; index++) {
            decodeMessage((await client.request(echoSubject, encodeMessage({ user: "x" }))).data);
          }
        });
        const whoami = await bestSeconds(3, async () => {
          for (let index = 0; index < checks; index++) await call("user.whoami", { user: "bench-user-1", token });
        });
        echo.unsubscribe();
        report(
          `session check ${(whoami / checks * 1_000).toFixed(2)} ms; bare round trip ${
            (roundTrip / checks * 1_000).toFixed(2)
          } ms`,
        );
        const figures: Figures = {
          login_vs_scrypt_ratio: round2(loginSeconds / scryptSeconds),
          login_throughput_vs_scrypt_ratio: round2(scryptParallel / loginParallel),
          session_check_vs_round_trip_ratio: round2(whoami / roundTrip),
        };
        report(
          `ratios: login/scrypt ${figures.login_vs_scrypt_ratio}, login throughput/scrypt throughput ${figures.login_throughput_vs_scrypt_ratio}, session check/round trip ${figures.session_check_vs_round_trip_ratio}`,
        );
        return figures;
      } finally {
        server.actor.send({ type: "STOP" });
        await server.done;
        await crypto.stop();
      }
    }),
};
