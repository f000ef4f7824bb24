/**
 * The audit that rides on garbage collection's listing: a chunk the log records on a node
 * that the node's whole listing lacks (a disk replaced, a damaged copy the node's scrub
 * removed) is recorded lost there, so repair copies it back. A listing is only a hint, so
 * before anything is recorded the node is asked again (`has`: a copy put during the listing
 * is there now) and another recorded holder must still hold the chunk: a node that comes back
 * over an empty disk (a mount not up yet) never has its chunks' last copies written off, and
 * when its disk returns, its copies are still on record. Each loss is decided against the
 * object's sequence, so a repair's record in between is seen first.
 */
import type { Bus } from "../../ports.ts";
import { imageSubject, limits, veilEvent } from "../../../events/mod.ts";
import { chunksOf, type ImagesState } from "../../../projections/mod.ts";
import { storeRequest } from "../../storage-node/client.ts";
import { atLatest, decideAndAppend } from "../decide-and-append.ts";
import type { CollectorDeps } from "./collector.ts";

/** For each node, the chunk hashes the log records on it, in hash order (the order nodes list in). */
export function recordedByNode(state: ImagesState): Map<string, string[]> {
  const byNode = new Map<string, Set<string>>();
  for (const image of Object.values(state.images)) {
    for (const chunk of chunksOf(image)) {
      for (const node of chunk.nodes) {
        let hashes = byNode.get(node);
        if (!hashes) byNode.set(node, hashes = new Set());
        hashes.add(chunk.hash);
      }
    }
  }
  return new Map([...byNode].map(([node, hashes]) => [node, [...hashes].sort()]));
}

/**
 * Walks a node's recorded hashes alongside its listing, page by page (both in hash order),
 * keeping the recorded ones the listing skipped: at most `max`, and nothing but them.
 */
export class ListingAudit {
  readonly missing: string[] = [];
  #next = 0;

  constructor(private readonly recorded: readonly string[], private readonly max: number) {}

  page(listed: readonly { hash: string }[]): void {
    for (const { hash } of listed) this.#skipTo(hash);
  }

  /** The listing ended: whatever is recorded after its last hash is missing too. */
  end(): readonly string[] {
    this.#skipTo(undefined);
    return this.missing;
  }

  #skipTo(hash: string | undefined): void {
    while (this.#next < this.recorded.length && (hash === undefined || this.recorded[this.#next]! <= hash)) {
      const recorded = this.recorded[this.#next++]!;
      if (recorded !== hash && this.missing.length < this.max) this.missing.push(recorded);
    }
  }
}

/** The audit runs inside a collection round, on its dependencies. */
export type AuditDeps = Pick<
  CollectorDeps,
  "bus" | "log" | "ids" | "nodeId" | "logger" | "images" | "now" | "stillLeading"
>;

const holds = (bus: Bus, node: string, hash: string) => storeRequest(bus, node, "has", { hash }).catch(() => undefined);

/** Records `node`'s copy of `hash` lost in every object that records it there, once confirmed; how many records. */
export async function confirmLost(deps: AuditDeps, node: string, hash: string): Promise<number> {
  const { bus, log, images, logger } = deps;
  // Asked again: the listing is a moment ago, and a copy may have been put since.
  if ((await holds(bus, node, hash)) !== false) return 0;
  const owners = Object.values(images.state.images).filter((image) =>
    chunksOf(image).some((chunk) => chunk.hash === hash && chunk.nodes.includes(node))
  );
  let recorded = 0;
  for (const owner of owners) {
    const others = chunksOf(owner).find((chunk) => chunk.hash === hash)!.nodes.filter((holder) => holder !== node);
    let heldElsewhere = false;
    for (const other of others) if ((heldElsewhere = (await holds(bus, other, hash)) === true)) break;
    if (!heldElsewhere) {
      // Written off, it would be gone from the record for good: kept, for its node (or a reader) to bring back.
      logger.warn("a chunk is held by none of its recorded nodes; left on record", { chunk: hash, node });
      continue;
    }
    const subject = imageSubject(owner.image);
    let appended = false;
    await decideAndAppend({
      log,
      subject,
      what: `object ${owner.image}`,
      load: atLatest(log, subject, images),
      decide: () => {
        const image = images.state.images[owner.image];
        const still = image && deps.stillLeading() &&
          chunksOf(image).some((chunk) => chunk.hash === hash && chunk.nodes.includes(node));
        appended = Boolean(still);
        return {
          events: still
            ? [veilEvent("ChunkLost", { image: owner.image, hash, node }, {
              id: deps.ids.next(),
              at: deps.now(),
              by: deps.nodeId,
            })]
            : [],
        };
      },
      applied: (seq) => images.waitFor(seq, limits.commandTimeoutMs),
    });
    if (appended) {
      recorded++;
      logger.warn("a storage node lacks a chunk it is recorded to hold; recorded lost for repair", {
        node,
        chunk: hash,
      });
    }
  }
  return recorded;
}
