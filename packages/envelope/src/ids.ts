import { monotonicFactory } from "ulid";

const next = monotonicFactory();

/** A new ULID: sortable by creation time, unique, 26 characters. */
export function newId(): string {
  return next();
}
