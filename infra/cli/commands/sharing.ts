/**
 * Sharing from the command line: run your peer (`veil peer`: presence, notifications,
 * previews), see who is online and what they show, ask for an object, answer requests,
 * view what you were granted, and follow your grants. Approving and viewing happen on this
 * machine: the cluster never sees an object in the clear.
 */
import { spawn } from "node:child_process";
import { join, resolve } from "node:path";
import process from "node:process";
import type { Command } from "commander";
import type { Bus } from "../../../actors/ports.ts";
import {
  AuthenticationError,
  everyPage,
  grantListReply,
  type GrantReply,
  grantReply,
  limits,
  requestListReply,
  requestReply,
  ValidationError,
} from "../../../events/mod.ts";
import { loadConfig } from "../../config.ts";
import { approve } from "../../../actors/peer/approve.ts";
import { discoverOnline } from "../../sharing/previews.ts";
import { openGrant } from "../../../actors/peer/view.ts";
import { writeView } from "../../sharing/view.ts";
import { commandsOver } from "../../command-client.ts";
import { exists } from "../../files.ts";
import { formatBytes, printLine, toJson } from "../format.ts";
import { cliLogger } from "../client.ts";
import { hostProfilePeer } from "../peer.ts";
import { table } from "../render.ts";
import { call, profileOption, withSession } from "../session.ts";
import { stopSignal } from "../signals.ts";
import { openManifest } from "../../vault/mod.ts";
import { withOwnKeys, withVault } from "./vault.ts";

const print = printLine;
const iso = (ms: number) => new Date(ms).toISOString();

const durationUnitsMs: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--expires`: 30m, 12h, 7d (a minute to a year). */
export function parseExpiry(text: string): number {
  const match = /^(\d+)(m|h|d)$/.exec(text);
  const ms = match ? Number(match[1]) * durationUnitsMs[match[2]!]! : NaN;
  if (!(ms >= 60_000 && ms <= limits.durationMsMax)) {
    throw new ValidationError(`--expires takes a duration such as 30m, 12h or 7d (up to a year), got ${text}`);
  }
  return ms;
}

export function parseViews(text: string): number {
  const views = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(views >= 1 && views <= limits.grantViewsMax)) {
    throw new ValidationError(`--views takes a whole number from 1 to ${limits.grantViewsMax}, got ${text}`);
  }
  return views;
}

/** "3m ago" from an age in ms: what a person reads in a listing. */
function age(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1_000));
  if (seconds < 120) return `${seconds}s ago`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)}m ago`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)}h ago`;
  return `${Math.round(seconds / 86_400)}d ago`;
}

/** A grant, with (approvals only) the fingerprint of the recipient's key it is sealed to. */
type GrantView = GrantReply & { recipientKey?: string };

/** Opens a file in the system's viewer, detached; a machine without one gets a clear line instead. */
function openInViewer(path: string): void {
  const opener = process.platform === "darwin" ? "open" : process.platform === "win32" ? "explorer" : "xdg-open";
  const child = spawn(opener, [path], { detached: true, stdio: "ignore" });
  child.on("error", () => process.stderr.write(`could not start ${opener}; open ${path} yourself\n`));
  child.unref();
}

export function registerSharing(program: Command): void {
  program
    .command("peer")
    .description("stay online: beat your presence, print notifications, answer for your shown objects' previews")
    .addOption(profileOption())
    .action(async (options: { profile?: string }) => {
      await withSession(options, async ({ bus, stored }) => {
        const peer = hostProfilePeer({ bus, stored, logger: cliLogger(loadConfig()), print });
        print(`online as ${stored.user}; Ctrl-C to go offline`);
        const signal = stopSignal();
        signal.addEventListener("abort", () => peer.actor.send({ type: "STOP" }), { once: true });
        const { problem } = await peer.done;
        if (problem) throw new Error(problem);
        print("offline");
      });
    });

  program
    .command("online")
    .description("users online now, with the objects they show and their previews (written to a folder)")
    .argument("[user]", "only this user (found however many others are online)")
    .option("--dir <folder>", "where the previews go (default: $VEIL_HOME/online)")
    .option("--json", "print the list as JSON (with the previews' paths)")
    .addOption(profileOption())
    .action(async (user: string | undefined, options: { dir?: string; json?: boolean; profile?: string }) => {
      const folder = resolve(options.dir ?? join(loadConfig().veilHome, "online"));
      await withSession(options, async ({ bus, session }) => {
        const { users: online, more } = await discoverOnline(
          { send: commandsOver(bus), session },
          folder,
          user ? { of: user } : {},
        );
        if (options.json) return void print(toJson(online));
        if (online.length === 0) return void print(user ? `${user} is not online` : "nobody else is online");
        for (const peer of online) {
          print(`${peer.user} (seen ${age(Date.now() - peer.lastSeenAt)})`);
          if (peer.images.length === 0) print("  shows nothing");
          for (const image of peer.images) {
            const preview = image.previewPath
              ? `preview ${formatBytes(image.previewBytes!)} at ${image.previewPath}`
              : image.preview
              ? `preview unavailable: ${image.previewProblem}`
              : "no preview";
            print(`  ${image.name} (${formatBytes(image.bytes)}): ${preview}`);
          }
        }
        if (more) print(`and more users than the ${online.length} shown; find one with: veil online <user>`);
      });
    });

  program
    .command("discoverable")
    .description("show (on) or stop showing (off) one of your objects to users who find you online")
    .argument("<id|name>", "the object's id, or its name")
    .argument("<on|off>", "on or off")
    .option("--as <name>", "the name they see (default: its own; whatever it is, it becomes public)")
    .addOption(profileOption())
    .action(async (reference: string, state: string, options: { as?: string; profile?: string }) => {
      if (state !== "on" && state !== "off") throw new ValidationError(`say on or off, got ${state}`);
      await withOwnKeys(options, async (deps) => {
        // The name is sealed in the log: it is opened here, and sent only when the object is to be shown.
        const { manifest } = await openManifest(deps, reference);
        await call(deps.bus, "vault.discoverable", {
          ...deps.session,
          image: manifest.image,
          discoverable: state === "on",
          ...(state === "on" ? { name: options.as ?? manifest.name } : {}),
        });
        print(
          state === "on"
            ? `${manifest.name} is shown${
              options.as ? ` as ${JSON.stringify(options.as)}` : ""
            } to users who find you online`
            : `${manifest.name} is no longer shown`,
        );
      });
    });

  program
    .command("request")
    .description("ask a user for one of the objects they show")
    .argument("<user>", "the owner")
    .argument("<image>", "the object's id or name, as `veil online` lists it")
    .option("--json", "print the request as JSON")
    .addOption(profileOption())
    .action(async (owner: string, image: string, options: { json?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        const request = await call(bus, "request.create", { ...session, owner, image }, requestReply);
        if (options.json) return void print(toJson(request));
        print(
          `asked ${owner} for ${request.name} (request ${request.request}); it waits until ${iso(request.expiresAt)}`,
        );
      });
    });

  program
    .command("requests")
    .description("requests to you and from you, with their status and age")
    .option("--json", "print them as JSON")
    .addOption(profileOption())
    .action(async (options: { json?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        const pages = await everyPage((after) =>
          call(bus, "request.list", { ...session, ...(after ? { after } : {}) }, requestListReply)
        );
        const list = {
          incoming: pages.flatMap((page) => page.incoming),
          outgoing: pages.flatMap((page) => page.outgoing),
        };
        if (options.json) return void print(toJson(list));
        const now = Date.now();
        const rows = [
          ...list.incoming.map((
            one,
          ) => ["in", one.request, one.from, one.name, one.status, age(now - one.requestedAt)]),
          ...list.outgoing.map((
            one,
          ) => ["out", one.request, one.owner, one.name, one.status, age(now - one.requestedAt)]),
        ];
        if (rows.length === 0) return void print("no requests");
        for (const line of table([["", "REQUEST", "WHO", "OBJECT", "STATUS", "AGE"], ...rows])) print(line);
      });
    });

  program
    .command("approve")
    .description("grant a request: the object is sealed again for the asker, to be opened a number of times")
    .argument("<request>", "the request's id")
    .requiredOption("--views <n>", `how many times it may be opened (1 to ${limits.grantViewsMax})`)
    .option("--expires <duration>", "when the grant ends: 30m, 12h, 7d (default 30d)")
    .option("--json", "print the grant as JSON")
    .addOption(profileOption())
    .action(async (request: string, options: { views: string; expires?: string; json?: boolean; profile?: string }) => {
      const views = parseViews(options.views);
      const expiresInMs = options.expires ? parseExpiry(options.expires) : limits.grantExpiryDefaultMs;
      await withVault(options, async (deps) => {
        const grant = await approve(deps, request, { views, expiresAt: Date.now() + expiresInMs });
        if (options.json) return void print(toJson(grant));
        print(
          `granted ${grant.recipient} ${views} view${views === 1 ? "" : "s"} of ${grant.name} until ${
            iso(grant.expiresAt)
          } (grant ${grant.grant})`,
        );
        print(`sealed to ${grant.recipient}'s key ${grant.recipientKey} (they see theirs with \`veil whoami\`)`);
      });
    });

  program
    .command("deny")
    .description("deny a request")
    .argument("<request>", "the request's id")
    .addOption(profileOption())
    .action(async (request: string, options: { profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        await call(bus, "request.deny", { ...session, request });
        print(`denied request ${request}`);
      });
    });

  program
    .command("view")
    .description("open a grant made to you: spends one view, writes the object to -o (or a private temp file)")
    .argument("<grant>", "the grant's id")
    .option("-o, --output <path>", "where to write it (never over an existing file)")
    .option("--open", "open it in the system's viewer")
    .option("--json", "print what was written as JSON")
    .addOption(profileOption())
    .action(async (grant: string, options: { output?: string; open?: boolean; json?: boolean; profile?: string }) => {
      await withVault(options, async (deps) => {
        if (!deps.privateKey) throw new AuthenticationError("log in again to unlock your grants on this machine");
        // Checked before the view is spent: a view is not wasted on a file that cannot be written.
        if (options.output && (await exists(options.output))) {
          throw new ValidationError(`${options.output} exists; choose another -o`);
        }
        const opened = await openGrant({ ...deps, privateKey: deps.privateKey }, grant);
        const path = await writeView(opened.name, opened.plaintext, options.output && resolve(options.output));
        opened.plaintext.fill(0);
        if (options.json) return void print(toJson({ grant, path, name: opened.name, viewsLeft: opened.viewsLeft }));
        print(
          `wrote ${opened.name} to ${path} (mode 0600); ${opened.viewsLeft} view${
            opened.viewsLeft === 1 ? "" : "s"
          } left`,
        );
        if (options.open) openInViewer(path);
      });
    });

  program
    .command("revoke")
    .description("end a grant you made: nobody can open it again")
    .argument("<grant>", "the grant's id")
    .addOption(profileOption())
    .action(async (grant: string, options: { profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        const revoked = await call(bus, "grant.revoke", { ...session, grant }, grantReply);
        print(`revoked grant ${grant} (${revoked.name} for ${revoked.recipient}); its key is shredded`);
      });
    });

  program
    .command("inbox")
    .description("grants made to you: owner, object, views left, expiry")
    .option("--json", "print them as JSON")
    .addOption(profileOption())
    .action(async (options: { json?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        const list = await everyGrant(bus, session, "grant.inbox");
        if (options.json) return void print(toJson(list));
        if (list.length === 0) return void print("nothing granted to you yet");
        const rows = list.map((one) => [
          one.grant,
          one.owner,
          one.name,
          one.status === "open" ? `${one.viewsLeft} of ${one.views}` : `closed (${one.closedReason ?? "expired"})`,
          iso(one.expiresAt),
        ]);
        for (const line of table([["GRANT", "FROM", "OBJECT", "VIEWS LEFT", "EXPIRES"], ...rows])) print(line);
      });
    });

  program
    .command("grants")
    .description("grants you made, with the time of each view: your receipt")
    .option("--json", "print them as JSON")
    .addOption(profileOption())
    .action(async (options: { json?: boolean; profile?: string }) => {
      await withSession(options, async ({ bus, session }) => {
        const list = await everyGrant(bus, session, "grant.list");
        if (options.json) return void print(toJson(list));
        if (list.length === 0) return void print("you have granted nothing yet");
        for (const one of list) {
          const state = one.status === "open"
            ? `${one.viewsLeft} of ${one.views} views left`
            : `closed (${one.closedReason ?? "expired"})`;
          print(`${one.grant} ${one.name} to ${one.recipient}: ${state}, expires ${iso(one.expiresAt)}`);
          for (const at of one.viewedAt ?? []) print(`  viewed ${iso(at)}`);
        }
      });
    });
}

/** Every grant made to the caller (`grant.inbox`) or by them (`grant.list`), page by page. */
async function everyGrant(
  bus: Bus,
  session: { user: string; token: string },
  name: "grant.inbox" | "grant.list",
): Promise<GrantView[]> {
  const pages = await everyPage((after) =>
    call(bus, name, { ...session, ...(after ? { after } : {}) }, grantListReply)
  );
  return pages.flatMap((page) => page.grants);
}
