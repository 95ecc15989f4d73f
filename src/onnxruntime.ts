// onnxruntime-node is an optional peer dependency: `check` (the reference), `bench` (its contestants) and shape
// inference past ops the IR cannot infer need it; planning, `run` and `-o` do not. Loaded on first use, with a
// clear exit-3 message where it is not installed.
import { unsupported } from './errors.js';

type Ort = typeof import('onnxruntime-node');

let loaded: Promise<Ort> | undefined;

/** onnxruntime-node, or FcmError 'unsupported' naming `purpose` when the package is not installed. */
export function loadOnnxruntime(purpose: string): Promise<Ort> {
  loaded ??= import('onnxruntime-node');
  return loaded.catch((e: unknown) => {
    loaded = undefined;
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
      throw unsupported(purpose, 'needs onnxruntime-node, an optional peer dependency that is not installed (npm install onnxruntime-node@1.30)');
    }
    throw e;
  });
}
