/** Secrets from the user: a no-echo prompt on a terminal, or the first line of stdin when asked. */
import process from "node:process";
import { ValidationError } from "../../events/mod.ts";

async function firstLineOfStdin(): Promise<string> {
  let text = "";
  for await (const chunk of process.stdin) {
    text += new TextDecoder().decode(chunk as Uint8Array);
    if (text.includes("\n") || text.length > 4_096) break;
  }
  return text.split(/\r?\n/)[0]!;
}

function promptHidden(question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(question);
    stdin.setRawMode(true);
    stdin.resume();
    let answer = "";
    const done = (error?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.removeListener("data", onData);
      process.stderr.write("\n");
      if (error) reject(error);
      else resolve(answer);
    };
    const onData = (data: Uint8Array) => {
      for (const character of new TextDecoder().decode(data)) {
        if (character === "\r" || character === "\n") return done();
        if (character === "\u0003") return done(new ValidationError("cancelled"));
        if (character === "\u007f" || character === "\b") answer = answer.slice(0, -1);
        else answer += character;
      }
    };
    stdin.on("data", onData);
  });
}

/** The passphrase: never an argument (it would sit in shell history and `ps`). */
export async function readPassphrase(options: { fromStdin?: boolean; confirm?: boolean }): Promise<string> {
  let passphrase: string;
  if (options.fromStdin) passphrase = await firstLineOfStdin();
  else if (process.stdin.isTTY) {
    passphrase = await promptHidden("passphrase: ");
    if (options.confirm && (await promptHidden("again: ")) !== passphrase) {
      throw new ValidationError("the passphrases do not match");
    }
  } else throw new ValidationError("no passphrase: run in a terminal, or pipe it with --passphrase-stdin");
  if (passphrase.length === 0) throw new ValidationError("the passphrase is empty");
  return passphrase;
}
