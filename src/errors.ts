// One error type for everything fcm-opt refuses, with the stable exit codes of the CLI.
// The message names the file and the node or tensor; the CLI prints it on one line, without a stack
// trace unless --verbose.

export const ExitCode = {
  ok: 0,
  overTolerance: 1,
  invalidInput: 2,
  unsupported: 3,
  resourceLimit: 4,
  gpuFailure: 5,
} as const;

export type ErrorKind = 'invalid' | 'unsupported' | 'limit' | 'gpu' | 'tolerance';

const exitCodes: Record<ErrorKind, number> = {
  invalid: ExitCode.invalidInput,
  unsupported: ExitCode.unsupported,
  limit: ExitCode.resourceLimit,
  gpu: ExitCode.gpuFailure,
  tolerance: ExitCode.overTolerance,
};

export class FcmError extends Error {
  readonly kind: ErrorKind;
  readonly exitCode: number;
  constructor(kind: ErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'FcmError';
    this.kind = kind;
    this.exitCode = exitCodes[kind];
  }
}

/** Invalid input (exit 2). `where` is the file, and the node or tensor when known: "model.onnx: node 'conv1'". */
export const invalid = (where: string, what: string) => new FcmError('invalid', `${where}: ${what}`);
/** Valid but not supported (exit 3). */
export const unsupported = (where: string, what: string) => new FcmError('unsupported', `${where}: ${what}`);
/** Over a resource limit (exit 4). */
export const overLimit = (where: string, what: string) => new FcmError('limit', `${where}: ${what}`);
/** The GPU failed: no adapter, device lost, validation or out-of-memory (exit 5). */
export const gpuFailure = (where: string, what: string) => new FcmError('gpu', `${where}: ${what}`);

/** Checked arithmetic for sizes: throws (exit 4) instead of producing a non-safe integer. */
export function checkedProduct(values: readonly number[], where: string, limit = Number.MAX_SAFE_INTEGER): number {
  let p = 1;
  for (const v of values) {
    if (!Number.isInteger(v) || v < 0) throw invalid(where, `dimension ${v} is not a non-negative integer`);
    p *= v;
    if (p > limit) throw overLimit(where, `size ${values.join('x')} exceeds the limit of ${limit}`);
  }
  return p;
}

// ---- showing messages --------------------------------------------------------------------------------------------
// Messages name files, nodes and tensors as the input spells them: a node name may hold a newline, a terminal escape
// sequence or 5 MB of text. The CLI prints every message through displayLine: one line, no control characters, no
// bidirectional overrides, invalid text visible as escapes, and names cut to a readable length.

/** Longest run of non-space characters shown whole; longer runs keep their head and tail. */
export const maxShownToken = 160;
/** Longest message shown (after escaping); the rest is cut. */
export const maxShownLine = 4000;

/** The escape of one UTF-16 code unit that must not reach a terminal raw, or undefined when it may. */
function escapeOf(c: number): string | undefined {
  if (c === 0x0a) return '\\n';
  if (c === 0x0d) return '\\r';
  if (c === 0x09) return '\\t';
  if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return `\\x${c.toString(16).padStart(2, '0')}`;
  // Bidirectional marks and overrides (they reorder what follows on screen), line/paragraph separators, the BOM,
  // and U+FFFD, which decoders put where the file's text was not valid UTF-8.
  if ((c >= 0x200e && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) || c === 0xfeff || c === 0xfffd) {
    return `\\u${c.toString(16).padStart(4, '0')}`;
  }
  return undefined;
}

/** `s` with control characters, bidi controls, U+FFFD and lone surrogates written as escapes. */
export function escapeText(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff) {
      const d = i + 1 < s.length ? s.charCodeAt(i + 1) : 0;
      if (d >= 0xdc00 && d <= 0xdfff) {
        out += s[i] + s[i + 1];
        i++;
        continue;
      }
    }
    // U+DC80..U+DCFF: a byte that was not valid UTF-8 in the file (src/text.ts), shown as that byte.
    if (c >= 0xdc80 && c <= 0xdcff) {
      out += `\\x${(c - 0xdc00).toString(16)}`;
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      out += `\\u${c.toString(16)}`;
      continue;
    }
    out += escapeOf(c) ?? s[i];
  }
  return out;
}

/** A cut position at or near `i` that does not split a surrogate pair. */
function boundary(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c >= 0xdc00 && c <= 0xdfff && i > 0 ? i - 1 : i;
}

/** `s` with every run of more than maxShownToken non-space characters cut in the middle. */
export function shortenTokens(s: string, max = maxShownToken): string {
  return s.replace(/\S+/g, (t) => {
    if (t.length <= max) return t;
    const head = boundary(t, Math.floor(max * 0.7));
    const tail = boundary(t, t.length - Math.floor(max * 0.25));
    return `${t.slice(0, head)}...[${tail - head} characters cut]...${t.slice(tail)}`;
  });
}

/** A message as the CLI prints it: one line, escaped (escapeText), long names and the whole line cut. */
export function displayLine(message: string): string {
  // Long runs are cut before escaping, so that a 5 MB name costs one pass, not an escaped copy.
  const line = escapeText(shortenTokens(message));
  if (line.length <= maxShownLine) return line;
  const cut = boundary(line, maxShownLine);
  return `${line.slice(0, cut)}...[${line.length - cut} characters cut]`;
}
