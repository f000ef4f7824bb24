/** What each notification says. Plain text: nothing to render, nothing to track. */
import type { MailMessage } from "../ports.ts";
import type { Notification } from "../../projections/outbox.ts";

const iso = (ms: number) => new Date(ms).toISOString();

export function composeMail(notification: Notification, to: string, code?: string): MailMessage {
  const hello = `Hello ${notification.user},\n\n`;
  const footer = "\n\n-- veil";
  switch (notification.kind) {
    case "new-device":
      return {
        to,
        subject: "veil: a login from a new device",
        text: hello +
          `your account was logged in to at ${iso(notification.at)} from a device it had not seen before: ` +
          `${notification.deviceName ?? "unknown"}${
            notification.address ? ` (address ${notification.address})` : ""
          }.\n` +
          "If that was not you, change your password (veil passwd) and end that session (veil sessions --revoke)." +
          footer,
      };
    case "account-locked":
      return {
        to,
        subject: "veil: your account is locked after failed logins",
        text: hello +
          `after many failed logins, ${
            notification.lane === "trusted"
              ? "logins to your account"
              : "logins to your account from devices it has not logged in from before"
          } are refused until ${iso(notification.lockedUntil ?? notification.at)}.\n` +
          (notification.lane === "trusted"
            ? "The attempts came from one of your own devices or sessions: if they were not yours, " +
              "someone may have that device; change your password from another one when the lock ends."
            : "Devices you logged in from before can still log in. If those attempts were not yours, " +
              "someone may be guessing your password; consider changing it.") +
          footer,
      };
    case "email-code":
      return {
        to,
        subject: "veil: your login code",
        text: hello + `your one-time login code is ${code}. It works once, for 10 minutes.\n` +
          "If you did not try to log in, someone knows your password: change it." + footer,
      };
    default:
      return notification.kind satisfies never;
  }
}
