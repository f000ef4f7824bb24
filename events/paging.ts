/**
 * Listings a page at a time. A listing anyone else can make longer (who is online, the
 * requests others send you) must never outgrow a message, nor let a flood of entries hide
 * the ones that matter: each reply holds at most a page, in a stable order, and says where
 * the next page starts. The cursor is the last entry's sort key, so a page never repeats or
 * skips an entry that was there when the listing began.
 */
import { limits } from "./limits.ts";
import { string } from "./schema.ts";

/** A page's cursor, as a request carries it: a sort key (digits, ids, names and `:`). */
export const pageCursor = string({ lengthMin: 1, lengthMax: 128, pattern: /^[0-9A-Za-z:_.-]+$/ });

export interface Page<T> {
  readonly items: T[];
  /** The cursor of the next page; absent on the last. */
  readonly next?: string;
}

/** The entries after `after` in the order of `keyOf` (unique, compared as strings), `limit` at most. */
export function pageOf<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  options: { readonly after?: string | undefined; readonly limit?: number | undefined },
): Page<T> {
  const limit = options.limit ?? limits.listPageMax;
  const keyed = items.map((item) => ({ item, key: keyOf(item) })).sort((a, b) => (a.key < b.key ? -1 : 1));
  const after = options.after;
  const rest = after === undefined ? keyed : keyed.filter(({ key }) => key > after);
  const page = rest.slice(0, limit);
  return {
    items: page.map(({ item }) => item),
    ...(rest.length > limit ? { next: page.at(-1)!.key } : {}),
  };
}

/** A time as a sort key that orders like the number (times are below 10^16 ms). */
export const timeKey = (at: number): string => String(at).padStart(16, "0");

/**
 * Every page of a listing, asking for each after the last: bounded like everything else, so
 * a listing longer than any real one can be is a fault, not an endless loop.
 */
export async function everyPage<P extends { readonly next?: string }>(
  fetch: (after: string | undefined) => Promise<P>,
  pagesMax: number = limits.objectsPerUserPagesMax,
): Promise<P[]> {
  const pages: P[] = [];
  let after: string | undefined;
  for (let page = 0; page < pagesMax; page++) {
    const reply = await fetch(after);
    pages.push(reply);
    if (!reply.next) break;
    after = reply.next;
  }
  return pages;
}
