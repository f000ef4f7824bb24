/**
 * Typed errors with stable codes. The CLI turns a code into a clear message and an exit
 * status; consumers log decode errors and skip the record, never crash.
 */
export type ErrorCode =
  | "validation"
  | "not-found"
  | "conflict"
  | "forbidden"
  | "unavailable"
  | "timeout"
  | "integrity"
  | "busy"
  | "unauthenticated"
  | "event-malformed"
  | "event-too-large"
  | "event-unknown-type"
  | "event-newer-version"
  | "event-invalid-data";

export class VeilError extends Error {
  constructor(readonly code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "VeilError";
  }
}

export class ValidationError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("validation", message, options);
    this.name = "ValidationError";
  }
}

export class NotFoundError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("not-found", message, options);
    this.name = "NotFoundError";
  }
}

/** A clash with what exists (a name already taken, a second factor already on). */
export class ConflictError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("conflict", message, options);
    this.name = "ConflictError";
  }
}

/** Allowed to nobody in the caller's position, logged in or not. */
export class ForbiddenError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("forbidden", message, options);
    this.name = "ForbiddenError";
  }
}

/** Not logged in, or credentials that do not check out. Never says which part was wrong when that would tell whether a user exists. */
export class AuthenticationError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("unauthenticated", message, options);
    this.name = "AuthenticationError";
  }
}

/** An optimistic-concurrency conflict: the aggregate moved on since it was read. */
export class ConcurrencyError extends VeilError {
  constructor(
    readonly subject: string,
    readonly expectedSubjectSeq: number,
    options?: ErrorOptions,
  ) {
    super(
      "conflict",
      `${subject} is no longer at sequence ${expectedSubjectSeq}; reload and decide again`,
      options,
    );
    this.name = "ConcurrencyError";
  }
}

/** The broker or a peer could not be reached. */
export class UnavailableError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("unavailable", message, options);
    this.name = "UnavailableError";
  }
}

export class TimeoutError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("timeout", message, options);
    this.name = "TimeoutError";
  }
}

/** Sealed data that does not open: a wrong key, or bytes damaged or tampered with. */
export class IntegrityError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("integrity", message, options);
    this.name = "IntegrityError";
  }
}

/** A bounded queue is full: the caller should retry later rather than pile on. */
export class BusyError extends VeilError {
  constructor(message: string, options?: ErrorOptions) {
    super("busy", message, options);
    this.name = "BusyError";
  }
}

export type EventDecodeErrorCode = Extract<ErrorCode, `event-${string}`>;

/** A stored or received payload that is not a valid veil event. */
export class EventDecodeError extends VeilError {
  constructor(code: EventDecodeErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.name = "EventDecodeError";
  }
}

/**
 * The typed error for a code that came over the wire (a command's reply), so callers can
 * tell refusals apart with `instanceof` wherever the error was first thrown.
 */
export function errorFromCode(code: ErrorCode, message: string): VeilError {
  switch (code) {
    case "validation":
      return new ValidationError(message);
    case "not-found":
      return new NotFoundError(message);
    case "conflict":
      return new ConflictError(message);
    case "forbidden":
      return new ForbiddenError(message);
    case "unavailable":
      return new UnavailableError(message);
    case "timeout":
      return new TimeoutError(message);
    case "integrity":
      return new IntegrityError(message);
    case "busy":
      return new BusyError(message);
    case "unauthenticated":
      return new AuthenticationError(message);
    default:
      return new VeilError(code, message);
  }
}
