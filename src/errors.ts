// The one error type of the proxy: a stable `code` from a fixed list, a message for people, an optional cause.
export type ErrorCode =
  | "config_invalid"
  | "pool_exhausted"
  | "tunnel_cooldown"
  | "tunnel_capacity"
  | "tunnel_start_rate"
  | "tunnel_start_failed"
  | "tunnel_login_required"
  | "tunnel_stopping"
  | "spawn_failed";

export class ProxyError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = "ProxyError";
  }
}

export function isProxyError(error: unknown, code?: ErrorCode): error is ProxyError {
  return error instanceof ProxyError && (code === undefined || error.code === code);
}
