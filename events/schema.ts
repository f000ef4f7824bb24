/**
 * Small runtime schemas for event data. Every payload that comes off the wire is checked
 * against one before anything trusts it, and the TypeScript types of the events are
 * inferred from the same schemas, so the two cannot drift apart.
 *
 * Validation runs for every event read or written, so the happy path allocates nothing
 * but the result: the path of an offending field is assembled only when a check fails.
 */
import { ValidationError } from "./errors.ts";

export interface Schema<T> {
  /** Returns the value typed, or throws a FieldError naming the offending path. */
  parse(value: unknown): T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/** A ValidationError that knows which field failed; maps prefix their key as it travels up. */
export class FieldError extends ValidationError {
  readonly path: string[] = [];

  constructor(readonly expectation: string) {
    super(`value: ${expectation}`);
  }

  /** Prefixes a key (or a name such as "data") to the path and returns this error. */
  at(key: string): this {
    this.path.unshift(key);
    this.message = `${this.path.join(".")}: ${this.expectation}`;
    return this;
  }
}

function fail(expected: string, value: unknown): never {
  const got = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
  throw new FieldError(`expected ${expected}, got ${got}`);
}

export function string(
  options: { lengthMin?: number; lengthMax: number; pattern?: RegExp },
): Schema<string> {
  const lengthMin = options.lengthMin ?? 0;
  return {
    parse(value) {
      if (typeof value !== "string") fail("a string", value);
      if (value.length < lengthMin || value.length > options.lengthMax) {
        fail(`${lengthMin}..${options.lengthMax} characters`, value);
      }
      if (options.pattern && !options.pattern.test(value)) fail(`a string matching ${options.pattern}`, value);
      return value;
    },
  };
}

export function integer(options: { min?: number; max?: number } = {}): Schema<number> {
  const min = options.min ?? Number.MIN_SAFE_INTEGER;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return {
    parse(value) {
      if (typeof value !== "number" || !Number.isSafeInteger(value)) fail("an integer", value);
      if (value < min || value > max) fail(`an integer in ${min}..${max}`, value);
      return value;
    },
  };
}

export function oneOf<const T extends readonly string[]>(values: T): Schema<T[number]> {
  return {
    parse(value) {
      if (typeof value !== "string" || !values.includes(value)) fail(`one of ${values.join(", ")}`, value);
      return value as T[number];
    },
  };
}

export function optional<T>(schema: Schema<T>): Schema<T | undefined> {
  return { parse: (value) => (value === undefined || value === null ? undefined : schema.parse(value)) };
}

/** A value that may be null (said, not left out: "no previous login"). */
export function nullable<T>(schema: Schema<T>): Schema<T | null> {
  return { parse: (value) => (value === null ? null : schema.parse(value)) };
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: undefined extends Infer<S[K]> ? K : never }[keyof S];
/** Fields whose schema allows undefined may be left out. */
type ObjectOf<S extends Shape> =
  & { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> }
  & { [K in OptionalKeys<S>]?: Infer<S[K]> };

/** A map with exactly these fields; unknown fields are dropped, not trusted. */
export function object<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
  const keys = Object.keys(shape);
  const schemas = Object.values(shape);
  return {
    parse(value) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) fail("a map", value);
      const source = value as Record<string, unknown>;
      const result: Record<string, unknown> = {};
      for (let index = 0; index < keys.length; index++) {
        const key = keys[index]!;
        let parsed: unknown;
        try {
          parsed = schemas[index]!.parse(source[key]);
        } catch (error) {
          throw error instanceof FieldError ? error.at(key) : error;
        }
        if (parsed !== undefined) result[key] = parsed;
      }
      return result as ObjectOf<S>;
    },
  };
}

export function boolean(): Schema<boolean> {
  return {
    parse(value) {
      if (typeof value !== "boolean") fail("true or false", value);
      return value;
    },
  };
}

/** Binary data (msgpack bin): hashes, salts, wrapped keys, sealed secrets. */
export function bytes(options: { lengthMin?: number; lengthMax: number }): Schema<Uint8Array> {
  const lengthMin = options.lengthMin ?? 0;
  return {
    parse(value) {
      if (!(value instanceof Uint8Array)) fail("bytes", value);
      if (value.byteLength < lengthMin || value.byteLength > options.lengthMax) {
        fail(
          lengthMin === options.lengthMax ? `${lengthMin} bytes` : `${lengthMin}..${options.lengthMax} bytes`,
          value,
        );
      }
      return value;
    },
  };
}

export function array<T>(schema: Schema<T>, options: { lengthMin?: number; lengthMax: number }): Schema<T[]> {
  const lengthMin = options.lengthMin ?? 0;
  return {
    parse(value) {
      if (!Array.isArray(value)) fail("an array", value);
      if (value.length < lengthMin || value.length > options.lengthMax) {
        fail(`${lengthMin}..${options.lengthMax} items`, value);
      }
      return value.map((item, index) => {
        try {
          return schema.parse(item);
        } catch (error) {
          throw error instanceof FieldError ? error.at(String(index)) : error;
        }
      });
    },
  };
}
