// Why a listener could not be bound, said the way an operator reads it: "address already in use", not a stack trace.
export class ListenFailure extends Error {
  constructor(
    /** The address as configured (--listen or --metrics-listen). */
    readonly listen: string,
    cause: unknown,
  ) {
    super(describe(cause), { cause });
    this.name = "ListenFailure";
  }
}

const BY_CODE: Record<string, string> = {
  EADDRINUSE: "address already in use: another process listens on it (--reuse-port shares it on purpose)",
  EADDRNOTAVAIL: "address not available: no interface of this host has it",
  EACCES: "permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE",
};

function describe(cause: unknown): string {
  const code = (cause as { code?: unknown } | null)?.code;
  if (typeof code === "string" && BY_CODE[code] !== undefined) return BY_CODE[code] as string;
  return cause instanceof Error ? cause.message : String(cause);
}
