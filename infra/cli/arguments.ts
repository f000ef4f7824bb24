/** Option values shared by several commands, checked with a message that names the option. */
import { bitsChoices } from "../../actors/stego/mod.ts";
import { ValidationError } from "../../events/mod.ts";

/** `--bits`: bits per colour channel, 1 to 4. */
export function parseBits(text: string): number {
  const bits = Number(text);
  if (!bitsChoices.includes(bits as 1)) throw new ValidationError(`--bits must be 1, 2, 3 or 4, got ${text}`);
  return bits;
}
