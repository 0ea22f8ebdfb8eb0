/**
 * The order of KV keys: by their UTF-8 bytes, which is the order of their code points.
 *
 * JavaScript's `<` compares UTF-16 code units, which agrees with code-point order except when a
 * surrogate (part of a character ≥ U+10000) meets a unit in U+E000–U+FFFF: UTF-16 puts the
 * surrogate first, UTF-8 puts it last. At the first differing unit both are shifted so that
 * surrogates sort above U+E000–U+FFFF, the usual fix-up. Keys are well-formed strings (the
 * store refuses lone surrogates), so this is exactly the byte order of their UTF-8 encoding.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return fixup(x) - fixup(y);
  }
  return a.length - b.length;
}

function fixup(u: number): number {
  if (u >= 0xd800 && u <= 0xdfff) return u + 0x2000;
  if (u >= 0xe000) return u - 0x800;
  return u;
}

