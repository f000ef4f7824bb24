/**
 * A simulated process's hold on the world: the bus, log, buckets and disk it reaches through
 * are cut when it dies. A crash then stops its work in flight as a killed process's stops:
 * nothing it had not yet sent leaves it (no late append, reply or put), what it was waiting
 * for never comes back to it, and the broker forgets its subscriptions.
 */
import type { Bus, Subscription } from "../../actors/ports.ts";

/** What a dead process waits on: nothing ever. */
const never = () => new Promise<never>(() => {});

export class Life {
  #alive = true;
  readonly #subscriptions = new Set<Subscription>();

  get alive(): boolean {
    return this.#alive;
  }

  end(): void {
    this.#alive = false;
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    this.#subscriptions.clear();
  }

  /** A promise of this life's: kept only while it lives. */
  keep<T>(promise: Promise<T>): Promise<T> {
    if (!this.#alive) return never();
    return promise.then(
      (value) => (this.#alive ? value : never()),
      (error) => (this.#alive ? Promise.reject(error) : never()),
    );
  }

  bus(bus: Bus): Bus {
    return {
      publish: (subject, data) => {
        if (this.#alive) bus.publish(subject, data);
      },
      subscribe: (pattern, handler, options) => {
        const subscription = bus.subscribe(pattern, (message) => {
          if (!this.#alive) return;
          handler({ ...message, respond: (answer) => void (this.#alive && message.respond(answer)) });
        }, options);
        this.#subscriptions.add(subscription);
        return {
          unsubscribe: () => {
            this.#subscriptions.delete(subscription);
            subscription.unsubscribe();
          },
        };
      },
      request: (subject, data, options) => this.keep(bus.request(subject, data, options)),
    };
  }

  /** Any port whose methods return promises (a log, a bucket, a disk): each call kept to this life. */
  port<T extends object>(port: T): T {
    return new Proxy(port, {
      get: (target, key, receiver) => {
        const value = Reflect.get(target, key, receiver);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          if (!this.#alive) return never();
          const result = value.apply(target, args);
          return result instanceof Promise ? this.keep(result) : result;
        };
      },
    });
  }
}
