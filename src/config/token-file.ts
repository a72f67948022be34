// `--admin-token-file`: the one file configuration reads; its trimmed content is the admin bearer token.
import { closeSync, openSync, readSync } from "node:fs";

/** Far above any real token; bounds what a mistaken path (a log file, a device) makes us read. */
export const MAX_TOKEN_FILE_LENGTH = 4096;
/** A token is sent as `Authorization: Bearer <token>`: one run of visible ASCII, no spaces. */
const TOKEN = /^[\x21-\x7e]+$/;

export type TokenFileResult = { readonly token: string } | { readonly problem: string };

/** Reads at most MAX_TOKEN_FILE_LENGTH + 1 bytes, so a larger file is refused without being read whole. */
export function readTokenFile(path: string): TokenFileResult {
  let text: string;
  try {
    const fd = openSync(path, "r");
    try {
      const buffer = Buffer.alloc(MAX_TOKEN_FILE_LENGTH + 1);
      let length = 0;
      while (length < buffer.length) {
        const n = readSync(fd, buffer, length, buffer.length - length, null);
        if (n === 0) break;
        length += n;
      }
      if (length > MAX_TOKEN_FILE_LENGTH) return { problem: `it is longer than ${MAX_TOKEN_FILE_LENGTH} bytes` };
      text = buffer.toString("utf8", 0, length);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    return { problem: `it cannot be read: ${((error as Error).message.split(", ")[0] ?? String(error)).trim()}` };
  }
  const token = text.trim();
  if (token === "") return { problem: "it is empty" };
  if (!TOKEN.test(token)) return { problem: "the token must be one line of visible ASCII without spaces" };
  return { token };
}
