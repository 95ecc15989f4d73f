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
