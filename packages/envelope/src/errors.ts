/** Wire error codes (PROTOCOL section 2). */
export const ErrorCode = {
  NOT_FOUND: 1001,
  INVALID_REQUEST: 1002,
  EXECUTION_FAILED: 1003,
  TIMEOUT: 1004,
  UNREACHABLE: 1005,
  UNAUTHORIZED: 1006,
  OVERLOADED: 1007,
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const names = new Map<number, string>(Object.entries(ErrorCode).map(([k, v]) => [v, k]));

/** The name of a wire error code, e.g. `NOT_FOUND` for 1001. */
export function errorCodeName(code: number): string {
  return names.get(code) ?? "UNKNOWN";
}

/** The error object as it travels on the wire. */
export interface WireError {
  code: number;
  message: string;
  details: Record<string, unknown>;
}

/**
 * The one error type of MPREG: a numeric wire code, a readable message and structured details.
 * Every package throws this (or returns it) when the failure has a wire meaning.
 */
export class MpregError extends Error {
  override readonly name = "MpregError";
  readonly code: number;
  readonly details: Record<string, unknown>;

  constructor(code: number, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.code = code;
    this.details = details;
  }

  /** The `{code, message, details}` object for a reply frame. */
  toWire(): WireError {
    return { code: this.code, message: this.message, details: this.details };
  }

  /** Rebuilds an error received on the wire. */
  static fromWire(e: WireError): MpregError {
    return new MpregError(e.code, e.message, e.details ?? {});
  }

  static notFound(reason: string, details: Record<string, unknown> = {}): MpregError {
    return new MpregError(ErrorCode.NOT_FOUND, reason, { ...details, reason });
  }

  static invalid(reason: string, path?: string): MpregError {
    return new MpregError(ErrorCode.INVALID_REQUEST, reason, path === undefined ? { reason } : { reason, path });
  }

  static overloaded(reason: string, retryAfterMs?: number): MpregError {
    return new MpregError(
      ErrorCode.OVERLOADED,
      reason,
      retryAfterMs === undefined ? { reason } : { reason, retry_after_ms: retryAfterMs },
    );
  }
}

/** True when `e` is an MpregError (also across package copies, by shape). */
export function isMpregError(e: unknown): e is MpregError {
  return (
    e instanceof MpregError ||
    (typeof e === "object" && e !== null && (e as { name?: unknown }).name === "MpregError" &&
      typeof (e as { code?: unknown }).code === "number")
  );
}
