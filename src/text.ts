// Names in model files are UTF-8, but a file may hold any bytes. Decoding invalid bytes to U+FFFD (TextDecoder,
// Node's Buffer) loses them: two names that differ only there become one name, and a message can show only
// `\ufffd`. Here every byte that is not part of a valid UTF-8 sequence becomes the lone surrogate U+DC00 + byte
// (U+DC80..U+DCFF: never produced by valid UTF-8), which the message printer shows as `\xNN` (errors.ts) and the
// encoder writes back as the byte itself, so a name survives import and export unchanged.

/** The code point of a valid UTF-8 sequence at `i`, and its length, or undefined when the bytes there are not one. */
function sequenceAt(b: Uint8Array, i: number, end: number): [number, number] | undefined {
  const c = b[i];
  const cont = (k: number) => i + k < end && (b[i + k] & 0xc0) === 0x80;
  if (c >= 0xc2 && c <= 0xdf && cont(1)) return [((c & 0x1f) << 6) | (b[i + 1] & 0x3f), 2];
  if (c >= 0xe0 && c <= 0xef && cont(1) && cont(2)) {
    const cp = ((c & 0x0f) << 12) | ((b[i + 1] & 0x3f) << 6) | (b[i + 2] & 0x3f);
    // Overlong forms and UTF-16 surrogates are not valid UTF-8.
    return cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff) ? [cp, 3] : undefined;
  }
  if (c >= 0xf0 && c <= 0xf4 && cont(1) && cont(2) && cont(3)) {
    const cp = ((c & 0x07) << 18) | ((b[i + 1] & 0x3f) << 12) | ((b[i + 2] & 0x3f) << 6) | (b[i + 3] & 0x3f);
    return cp >= 0x10000 && cp <= 0x10ffff ? [cp, 4] : undefined;
  }
  return undefined;
}

/** Bytes [start, end) as text; each byte outside a valid UTF-8 sequence becomes U+DC00 + byte. */
export function decodeUtf8Lossless(b: Uint8Array, start = 0, end = b.length): string {
  let out = '';
  // ASCII in chunks: String.fromCharCode takes its arguments on the stack.
  const ascii = (from: number, to: number) => {
    for (let k = from; k < to; k += 8192) out += String.fromCharCode(...b.subarray(k, Math.min(to, k + 8192)));
  };
  let run = start; // start of the pending ASCII run
  let i = start;
  while (i < end) {
    const c = b[i];
    if (c < 0x80) { i++; continue; }
    ascii(run, i);
    const s = sequenceAt(b, i, end);
    if (s) {
      out += String.fromCodePoint(s[0]);
      i += s[1];
    } else {
      out += String.fromCharCode(0xdc00 + c);
      i++;
    }
    run = i;
  }
  ascii(run, end);
  return out;
}

/** Bytes of `s` as UTF-8, U+DC80..U+DCFF written back as the byte they stand for (other lone surrogates as U+FFFD). */
export function encodeUtf8Lossless(s: string): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp >= 0xdc80 && cp <= 0xdcff) { out.push(cp - 0xdc00); continue; }
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) { cp = 0x10000 + ((cp - 0xd800) << 10) + (d - 0xdc00); i++; }
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  }
  return Uint8Array.from(out);
}

/** Whether `s` is plain ASCII (the common case: nothing to map). */
export const isAscii = (s: string): boolean => /^[\x00-\x7f]*$/.test(s);
