/**
 * A cheap estimate of how many bytes a decoded value takes, close to its MessagePack size:
 * strings count their UTF-16 length, numbers 9, binary its byteLength, containers a small
 * header plus their contents (object keys included). It stops walking as soon as the total
 * passes `limit` and then returns a number above `limit`, so a huge or cyclic value costs no
 * more than `limit` allows. Used for the payload limit, the queue byte limits and retention.
 */
export function estimateBytes(value: unknown, limit = Number.MAX_SAFE_INTEGER): number {
  // A binary or scalar payload (the common case) needs no walk and no stack.
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return scalarBytes(value);
  let total = 0;
  // An explicit stack: decoded frames may nest deeply, recursion could overflow.
  const stack: unknown[] = [value];
  while (stack.length > 0) {
    const v = stack.pop();
    switch (typeof v) {
      case "string":
        total += v.length + 1;
        break;
      case "number":
      case "bigint":
        total += 9;
        break;
      case "boolean":
      case "undefined":
        total += 1;
        break;
      case "object":
        if (v === null) total += 1;
        else if (ArrayBuffer.isView(v)) total += v.byteLength + 5;
        else if (v instanceof ArrayBuffer) total += v.byteLength + 5;
        else if (Array.isArray(v)) {
          // Every element costs at least one byte: refuse a huge array before walking it.
          total += 5;
          if (total + v.length > limit) return total + v.length;
          for (let i = 0; i < v.length; i++) stack.push(v[i]);
        } else {
          total += 5;
          for (const k in v) {
            if (!Object.hasOwn(v, k)) continue;
            total += k.length + 1;
            if (total > limit) return total;
            stack.push((v as Record<string, unknown>)[k]);
          }
        }
        break;
      default:
        // functions, symbols: not representable on the wire; count them as one byte.
        total += 1;
    }
    if (total > limit) return total;
  }
  return total;
}

/** `estimateBytes` of a value that is not a container (or of a typed array): the same numbers. */
function scalarBytes(v: unknown): number {
  switch (typeof v) {
    case "string":
      return v.length + 1;
    case "number":
    case "bigint":
      return 9;
    case "boolean":
    case "undefined":
      return 1;
    case "object":
      return v === null ? 1 : (v as ArrayBufferView).byteLength + 5;
    default:
      return 1;
  }
}
