/**
 * Mail transports, on nodemailer (the maintained standard for mail from Node; it also runs
 * on Deno): SMTP when VEIL_SMTP_URL is set, otherwise each message is written as an .eml
 * file under <data>/mail/, which any mail program opens.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import process from "node:process";
import nodemailer from "nodemailer";
import type { MailMessage, MailTransport } from "../../actors/ports.ts";
import { limits, UnavailableError } from "../../events/mod.ts";
import { writeFileAtomic } from "../files.ts";

export function smtpTransport(url: string, from: string): MailTransport {
  const parsed = new URL(url);
  const transporter = nodemailer.createTransport({
    host: parsed.hostname,
    port: Number(parsed.port) || (parsed.protocol === "smtps:" ? 465 : 587),
    secure: parsed.protocol === "smtps:",
    ...(parsed.username
      ? { auth: { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) } }
      : {}),
    connectionTimeout: limits.smtpTimeoutMs,
    greetingTimeout: limits.smtpTimeoutMs,
    socketTimeout: limits.smtpTimeoutMs,
  });
  return {
    kind: "smtp",
    async send(message) {
      try {
        await transporter.sendMail({ from, ...message });
      } catch (cause) {
        throw new UnavailableError(`the mail server refused or did not answer: ${(cause as Error).message}`, { cause });
      }
    },
  };
}

export function fileTransport(folder: string, from: string): MailTransport {
  const transporter = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  let sequence = 0;
  return {
    kind: "file",
    async send(message: MailMessage) {
      const info = await transporter.sendMail({ from, ...message });
      await mkdir(folder, { recursive: true, mode: 0o700 });
      const name = `${new Date().toISOString().replace(/[:.]/g, "-")}-${process.pid}-${sequence++}.eml`;
      await writeFileAtomic(join(folder, name), new Uint8Array(info.message as Buffer));
    },
  };
}

export function mailTransport(options: { smtpUrl?: string; dataFolder: string; from: string }): MailTransport {
  return options.smtpUrl
    ? smtpTransport(options.smtpUrl, options.from)
    : fileTransport(join(options.dataFolder, "mail"), options.from);
}
