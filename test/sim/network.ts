/**
 * The simulated network: one Bus per node, all on one simulated clock, with the faults a
 * real network has. Messages are delayed, dropped, duplicated (and so reordered) by a
 * seeded PRNG, and partitions cut nodes off from each other. Bodies go through the real
 * msgpack codec, so what cannot cross NATS cannot cross the simulator either. For the
 * simulator only: tests of real behaviour use a real nats-server.
 */
import type { Bus, BusMessage, Caller, RequestOptions, Subscription } from "../../actors/ports.ts";
import { decodeMessage, encodeMessage, subjectMatches, TimeoutError, UnavailableError } from "../../events/mod.ts";
import type { Random } from "./random.ts";

export interface SimClock {
  now(): number;
  setTimeout(callback: () => void, delayMs: number): unknown;
}

export interface Faults {
  /** Probability that a message is lost. */
  dropRate: number;
  /** Probability that a message arrives twice. */
  duplicateRate: number;
  delayMinMs: number;
  delayMaxMs: number;
}

export const calmNetwork: Faults = { dropRate: 0, duplicateRate: 0, delayMinMs: 1, delayMaxMs: 5 };

/** A seed's bad network: up to 20% lost, up to 10% twice, up to 80 ms late. */
export function randomFaults(random: Random): Faults {
  return {
    dropRate: random.next() * 0.2,
    duplicateRate: random.next() * 0.1,
    delayMinMs: 1,
    delayMaxMs: random.between(5, 80),
  };
}

interface SimSubscription {
  readonly node: string;
  readonly pattern: string;
  readonly queue?: string;
  readonly handler: (message: BusMessage) => void;
  active: boolean;
}

export class SimNetwork {
  faults: Faults = { ...calmNetwork };
  /** Groups of nodes that can reach each other; nodes in different groups cannot. */
  #partition: readonly (readonly string[])[] | undefined;
  readonly #subscriptions: SimSubscription[] = [];
  #inboxes = 0;

  constructor(private readonly clock: SimClock, private readonly random: Random) {}

  partition(groups: readonly (readonly string[])[]): void {
    this.#partition = groups;
  }

  get partitioned(): boolean {
    return this.#partition !== undefined;
  }

  heal(): void {
    this.#partition = undefined;
  }

  canReach(from: string, to: string): boolean {
    if (!this.#partition || from === to) return true;
    return this.#partition.some((group) => group.includes(from) && group.includes(to));
  }

  /** A node's bus; `caller`: what the broker would say of its connection (a user's machine, in the clients' account). */
  bus(node: string, caller?: Caller): Bus {
    return {
      publish: (subject, data) => this.#publish(node, subject, data, undefined, caller),
      subscribe: (pattern, handler, options = {}) => this.#subscribe(node, pattern, handler, options.queue),
      request: (subject, data, options) => this.#request(node, subject, data, options, caller),
    };
  }

  #subscribe(node: string, pattern: string, handler: SimSubscription["handler"], queue?: string): Subscription {
    const subscription: SimSubscription = { node, pattern, queue, handler, active: true };
    this.#subscriptions.push(subscription);
    return {
      unsubscribe: () => {
        subscription.active = false;
        // Twice is once (a process's subscriptions end with it, and again as it stops).
        const index = this.#subscriptions.indexOf(subscription);
        if (index >= 0) this.#subscriptions.splice(index, 1);
      },
    };
  }

  #publish(from: string, subject: string, data: unknown, reply?: string, caller?: Caller): void {
    const bytes = encodeMessage(data);
    const matching = this.#subscriptions.filter((subscription) => subjectMatches(subscription.pattern, subject));
    // A queue group gets each message once, at one member chosen at random.
    const groups = new Map<string, SimSubscription[]>();
    const receivers: SimSubscription[] = [];
    for (const subscription of matching) {
      if (!subscription.queue) receivers.push(subscription);
      else groups.set(subscription.queue, [...(groups.get(subscription.queue) ?? []), subscription]);
    }
    for (const members of groups.values()) receivers.push(this.random.pick(members));
    for (const receiver of receivers) {
      if (!this.canReach(from, receiver.node) || this.random.chance(this.faults.dropRate)) continue;
      const copies = this.random.chance(this.faults.duplicateRate) ? 2 : 1;
      for (let copy = 0; copy < copies; copy++) {
        this.clock.setTimeout(() => {
          // Delivered only if the receiver still listens and is still reachable when it lands.
          if (!receiver.active || !this.canReach(from, receiver.node)) return;
          receiver.handler({
            subject,
            data: decodeMessage(bytes),
            expectsReply: Boolean(reply),
            ...(caller ? { caller } : {}),
            respond: (answer) => reply && this.#publish(receiver.node, reply, answer),
          });
        }, this.random.between(this.faults.delayMinMs, this.faults.delayMaxMs));
      }
    }
  }

  #request(
    from: string,
    subject: string,
    data: unknown,
    options: RequestOptions,
    caller?: Caller,
  ): Promise<unknown> {
    const { timeoutMs, accept = () => true } = options;
    if (!this.#subscriptions.some((subscription) => subjectMatches(subscription.pattern, subject))) {
      return Promise.reject(new UnavailableError(`nobody serves ${subject}`));
    }
    const inbox = `_INBOX.sim.${++this.#inboxes}`;
    return new Promise((resolve, reject) => {
      let settled = false;
      let last: { reply: unknown } | undefined;
      const subscription = this.#subscribe(from, inbox, (message) => {
        if (settled) return;
        if (!accept(message.data)) return void (last = { reply: message.data });
        settled = true;
        subscription.unsubscribe();
        resolve(message.data);
      });
      this.clock.setTimeout(() => {
        if (settled) return;
        settled = true;
        subscription.unsubscribe();
        if (last) return resolve(last.reply);
        reject(new TimeoutError(`no reply on ${subject} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#publish(from, subject, data, inbox, caller);
    });
  }
}
