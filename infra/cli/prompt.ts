/** Secrets from the user: a no-echo prompt on a terminal, or the first line of stdin when asked. */
import process from "node:process";
import { ValidationError } from "../../events/mod.ts";

const stdinBytesMax = 16_384;
let stdinLines: Promise<string[]> | undefined;

/** Stdin read once, as lines: secrets asked for one after another take the next line. */
async function nextLineOfStdin(): Promise<string> {
  stdinLines ??= (async () => {
    let text = "";
    // One streaming decoder, so a character split across two chunks stays one character.
    const decoder = new TextDecoder();
    for await (const chunk of process.stdin) {
      text += decoder.decode(chunk as Uint8Array, { stream: true });
      if (text.length > stdinBytesMax) break;
    }
    return text.split(/\r?\n/);
  })();
  return (await stdinLines).shift() ?? "";
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
    const decoder = new TextDecoder();
    const onData = (data: Uint8Array) => {
      // Escape sequences (arrow keys and the like) are not part of a secret: drop them whole.
      // deno-lint-ignore no-control-regex
      const typed = decoder.decode(data, { stream: true }).replace(/\u001b(\[[0-9;]*[A-Za-z~]|.)?/g, "");
      for (const character of typed) {
        if (character === "\r" || character === "\n") return done();
        if (character === "\u0003" || character === "\u0004") return done(new ValidationError("cancelled"));
        if (character === "\u007f" || character === "\b") answer = answer.slice(0, -1);
        else answer += character;
      }
    };
    stdin.on("data", onData);
  });
}

/**
 * A passphrase or password: never an argument (it would sit in shell history and `ps`).
 * From a no-echo prompt on a terminal, or the next line of stdin when asked.
 */
export async function readPassphrase(
  options: { fromStdin?: boolean; confirm?: boolean; label?: string; stdinFlag?: string },
): Promise<string> {
  const label = options.label ?? "passphrase";
  let passphrase: string;
  if (options.fromStdin) passphrase = await nextLineOfStdin();
  else if (process.stdin.isTTY) {
    passphrase = await promptHidden(`${label}: `);
    if (options.confirm && (await promptHidden("again: ")) !== passphrase) {
      throw new ValidationError(`the ${label}s do not match`);
    }
  } else {
    throw new ValidationError(
      `no ${label}: run in a terminal, or pipe it with ${options.stdinFlag ?? "--passphrase-stdin"}`,
    );
  }
  if (passphrase.length === 0) throw new ValidationError(`the ${label} is empty`);
  return passphrase;
}
