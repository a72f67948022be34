// The three outcomes of every wire parser: wait for more bytes, refuse, or a value with the bytes it used.
export type NeedMore = { readonly kind: "needMore" };
export type Invalid<C extends string = string> = { readonly kind: "invalid"; readonly code: C };
export type Done<T> = { readonly kind: "done"; readonly value: T; readonly consumed: number };
export type ParseResult<T, C extends string = string> = NeedMore | Invalid<C> | Done<T>;

export const NEED_MORE: NeedMore = { kind: "needMore" };

export function invalid<C extends string>(code: C): Invalid<C> {
  return { kind: "invalid", code };
}

export function done<T>(value: T, consumed: number): Done<T> {
  return { kind: "done", value, consumed };
}
