/**
 * Hosts the mailer machine for a leader: every interval (the machine's own delay) it delivers what the outbox holds
 * (oldest first, a batch a round) and records each delivery as `NotificationSent`, then
 * waits until the outbox has seen those records so nothing is sent twice by one leader.
 */
import { createActor, fromPromise } from "xstate";
import { mailerMachine } from "./machine.ts";
import { composeMail } from "./messages.ts";
import type { Clock, EventLog, IdSource, Logger, MailTransport, Timers } from "../ports.ts";
import { type ClusterSecrets, fromUtf8 } from "../server/accounts/secrets.ts";
import { openPlace } from "../server/accounts/places.ts";
import { limits, userSubject, veilEvent } from "../../events/mod.ts";
import { type OutboxState, userOf, type UsersState } from "../../projections/mod.ts";
import type { Projector } from "../server/projector.ts";
import { userEmail } from "../server/accounts/commands.ts";

export interface MailerDeps {
  readonly nodeId: string;
  readonly log: EventLog;
  readonly users: Projector<UsersState>;
  readonly outbox: Projector<OutboxState>;
  readonly secrets: ClusterSecrets;
  readonly mail: MailTransport;
  readonly clock: Clock;
  /** Drive the rounds: the system's timers, or the simulator's. */
  readonly timers: Timers;
  readonly ids: IdSource;
  readonly logger: Logger;
}

export function startMailer(deps: MailerDeps): { stop(): void } {
  const { nodeId, log, users, outbox, secrets, mail, clock, ids, logger } = deps;
  const machine = mailerMachine.provide({
    actions: {
      reportFailure: ({ event }) =>
        logger.warn("mail round failed; retrying later", {
          reason: (event as { error?: Error }).error?.message ?? "unknown",
        }),
    },
    actors: {
      deliverRound: fromPromise(async () => {
        // The users projection must have seen what the outbox has, or a new address would be missed.
        await users.waitFor(outbox.seq, limits.commandTimeoutMs);
        const pending = Object.values(outbox.state.pending).sort((a, b) => a.at - b.at);
        let lastSeq = 0;
        for (const notification of pending.slice(0, limits.mailerBatchMax)) {
          const kind = notification.kind;
          try {
            const user = userOf(users.state, notification.user);
            const to = user ? userEmail(secrets, user) : undefined;
            // A code already spent, or past its ten minutes, is not worth a mail.
            const expired = kind === "email-code" &&
              (!user?.emailCode || notification.at + limits.emailCodeTtlMs <= clock.now());
            if (to && !expired) {
              const code = notification.codeSealed &&
                fromUtf8(secrets.open("email-code", notification.user, notification.codeSealed));
              // The device and address are sealed in the log: opened here, for the user's own mail.
              const place = notification.kind === "new-device"
                ? openPlace(secrets, notification.user, notification)
                : {};
              await mail.send(composeMail({ ...notification, ...place }, to, code));
              logger.info("notification sent", { user: notification.user, kind, via: mail.kind });
            }
          } catch (error) {
            // One notification that cannot be sent must not hold up the rest: it stays in the outbox for the next round.
            logger.warn("notification not sent", { user: notification.user, kind, reason: (error as Error).message });
            continue;
          }
          // Recorded also when there is nothing to send any more (no address, a code already spent), so it does not wait forever.
          [lastSeq] = await log.append(userSubject(notification.user), [
            veilEvent("NotificationSent", {
              user: notification.user,
              notification: notification.id,
              transport: mail.kind,
            }, { id: ids.next(), at: clock.now(), by: nodeId }),
          ]) as [number];
        }
        if (lastSeq > 0) await outbox.waitFor(lastSeq, limits.commandTimeoutMs);
        return Math.max(0, pending.length - limits.mailerBatchMax);
      }),
    },
  });
  const actor = createActor(machine, { clock: deps.timers });
  actor.subscribe({
    error: (error) => logger.warn("mailer stopped", { reason: (error as Error).message }),
  });
  actor.start();
  return {
    stop() {
      actor.send({ type: "STOP" });
    },
  };
}
