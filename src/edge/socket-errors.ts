// What a socket error was, by its errno name: Bun sets `code` on some errors and only names it in the message of others.

const RESET_CODES = ["ECONNRESET", "EPIPE"];

export function errnoName(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code ?? /^E[A-Z]+/.exec(error.message)?.[0];
  return typeof code === "string" ? code : undefined;
}

/** The peer reset the connection (or we wrote after its reset). */
export function isReset(error: Error | undefined): boolean {
  const code = error === undefined ? undefined : errnoName(error);
  return code !== undefined && RESET_CODES.includes(code);
}
