// The weights of a TF.js model (Layers or graph): binary shards listed by `weightsManifest`, each weight a run of
// float32, int32, float16 or bool values, or uint8/uint16 values quantized as min + scale * q.
import { invalid, unsupported } from '../src/errors.js';
import { halfValues } from '../src/graph/util.js';

/** Reads a weight shard named in the manifest (a path relative to model.json). */
export type ShardLoader = (path: string) => Promise<Uint8Array>;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

interface ManifestWeight { name: string; shape: number[]; dtype: string; quantization?: { dtype: string; min?: number; scale?: number } }

const elementBytes: Record<string, number> = { float32: 4, int32: 4, uint8: 1, uint16: 2, float16: 2, bool: 1 };

/** Every weight of the manifest as float32 (quantized ones dequantized: value = min + scale * q). */
export async function readWeights(manifest: unknown, loadShard: ShardLoader, source: string): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  if (manifest === undefined) return out;
  if (!Array.isArray(manifest)) throw invalid(source, 'weightsManifest must be a list of groups');
  for (const group of manifest) {
    if (!isObj(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights)) throw invalid(source, 'a weightsManifest group needs paths and weights');
    const parts: Uint8Array[] = [];
    for (const p of group.paths) parts.push(await loadShard(String(p)));
    const total = parts.reduce((a, p) => a + p.length, 0);
    const buf = new Uint8Array(total);
    let o = 0;
    for (const p of parts) { buf.set(p, o); o += p.length; }
    let at = 0;
    for (const w of group.weights as ManifestWeight[]) {
      if (!isObj(w) || typeof w.name !== 'string' || !Array.isArray(w.shape)) throw invalid(source, 'a manifest weight needs a name and a shape');
      const n = w.shape.reduce((a, b) => a * b, 1);
      const stored = w.quantization?.dtype ?? w.dtype;
      const size = elementBytes[stored];
      if (!size) throw unsupported(source, `weight '${w.name}' has dtype ${stored}, which fcm-opt does not support`);
      if (!Number.isSafeInteger(n) || n < 0 || at + n * size > total) throw invalid(source, `weight '${w.name}' [${w.shape.join(', ')}] runs past the end of its shards (${total} bytes)`);
      const raw = buf.slice(at, at + n * size);
      at += n * size;
      let data: Float32Array;
      const q = w.quantization;
      if (stored === 'float32') data = new Float32Array(raw.buffer);
      else if (stored === 'int32') data = Float32Array.from(new Int32Array(raw.buffer));
      else if (stored === 'float16') data = halfValues('float16', new Uint16Array(raw.buffer));
      else if (stored === 'bool') data = Float32Array.from(raw);
      else {
        if (!q || typeof q.scale !== 'number' || typeof q.min !== 'number') throw invalid(source, `weight '${w.name}' is ${stored}-quantized without min and scale`);
        const ints = stored === 'uint8' ? raw : new Uint16Array(raw.buffer);
        data = Float32Array.from(ints, (v) => q.min! + q.scale! * v);
      }
      out.set(w.name, { shape: w.shape.map(Number), data });
    }
  }
  return out;
}

