/**
 * Small runtime schemas for event data. Every payload that comes off the wire is checked
 * against one before anything trusts it, and the TypeScript types of the events are
 * inferred from the same schemas, so the two cannot drift apart.
 */
import { ValidationError } from "./errors.ts";

export interface Schema<T> {
  /** Returns the value typed, or throws a ValidationError naming the offending path. */
  parse(value: unknown, path?: string): T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

function fail(path: string, expected: string, value: unknown): never {
  const got = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
  throw new ValidationError(`${path || "value"}: expected ${expected}, got ${got}`);
}

export function string(
  options: { lengthMin?: number; lengthMax: number; pattern?: RegExp },
): Schema<string> {
  return {
    parse(value, path = "") {
      if (typeof value !== "string") fail(path, "a string", value);
      if (value.length < (options.lengthMin ?? 0) || value.length > options.lengthMax) {
        fail(path, `${options.lengthMin ?? 0}..${options.lengthMax} characters`, value);
      }
      if (options.pattern && !options.pattern.test(value)) {
        fail(path, `a string matching ${options.pattern}`, value);
      }
      return value;
    },
  };
}

export function integer(options: { min?: number; max?: number } = {}): Schema<number> {
  const min = options.min ?? Number.MIN_SAFE_INTEGER;
  const max = options.max ?? Number.MAX_SAFE_INTEGER;
  return {
    parse(value, path = "") {
      if (typeof value !== "number" || !Number.isSafeInteger(value)) {
        fail(path, "an integer", value);
      }
      if (value < min || value > max) fail(path, `an integer in ${min}..${max}`, value);
      return value;
    },
  };
}

export function oneOf<const T extends readonly string[]>(values: T): Schema<T[number]> {
  return {
    parse(value, path = "") {
      if (typeof value !== "string" || !values.includes(value)) {
        fail(path, `one of ${values.join(", ")}`, value);
      }
      return value as T[number];
    },
  };
}

export function optional<T>(schema: Schema<T>): Schema<T | undefined> {
  return {
    parse: (value, path = "") => (value === undefined || value === null ? undefined : schema.parse(value, path)),
  };
}

type Shape = Record<string, Schema<unknown>>;
type ObjectOf<S extends Shape> = { [K in keyof S]: Infer<S[K]> };

/** A map with exactly these fields; unknown fields are dropped, not trusted. */
export function object<S extends Shape>(shape: S): Schema<ObjectOf<S>> {
  return {
    parse(value, path = "") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail(path, "a map", value);
      }
      const source = value as Record<string, unknown>;
      const result: Record<string, unknown> = {};
      for (const [key, schema] of Object.entries(shape)) {
        const parsed = schema.parse(source[key], path ? `${path}.${key}` : key);
        if (parsed !== undefined) result[key] = parsed;
      }
      return result as ObjectOf<S>;
    },
  };
}
