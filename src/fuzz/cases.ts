// A fuzz case is data: a seed input and a list of mutations, each (op, seed). Materializing it is a pure
// function, so the same case gives the same bytes in any process, and minimization removes mutations.
import { byteOps, mutateBytes, type ByteOp } from './mutate-bytes.js';
import { mutateOnnxModel, onnxOpWeights, onnxOps, type OnnxOp } from './mutate-onnx.js';
import { cfgOps, jsonOps, mutateCfg, mutateJson, mutateNpy, npyOps, type CfgOp, type JsonOp, type NpyOp } from './mutate-text.js';
import { mutateTflite, tfliteOpWeights, tfliteOps, type TfliteOp } from './mutate-tflite.js';
import { mutateZip, zipOps, type ZipOp } from './mutate-zip.js';
import type { Seed, Target } from './corpus.js';
import { decodeModel, encodeModel } from '../../converters/onnx/codec.js';
import { caseSeed, Rng } from './rng.js';

export interface Mutation {
  /** 'bytes.flip', 'onnx.dim', 'tflite.index', 'cfg.value', 'json.edges', 'npy.shape', ... */
  op: string;
  seed: number;
}

export interface FuzzCase {
  index: number;
  target: Target;
  seed: string;
  mutations: Mutation[];
}

/** How often each target is fuzzed: the model importers carry most of the risk. */
const targetWeights: readonly (readonly [number, Target])[] = [
  [40, 'onnx'], [25, 'tflite'], [4, 'bundle'], [6, 'tfjs'], [12, 'dag'], [8, 'cfg'], [5, 'hwjson'], [10, 'npy'], [2, 'run'],
];

function structuredOp(r: Rng, target: Target, seed: string): string {
  switch (target) {
    case 'run': return structuredOp(r, seed.startsWith('run:tflite:') ? 'tflite' : 'onnx', seed);
    case 'onnx': return `onnx.${r.weighted(onnxOps.map((o) => [onnxOpWeights[o], o] as const))}`;
    case 'tflite': return `tflite.${r.weighted(tfliteOps.map((o) => [tfliteOpWeights[o], o] as const))}`;
    case 'bundle': return `zip.${r.pick(zipOps)}`;
    case 'cfg': return `cfg.${r.pick(cfgOps)}`;
    case 'hwjson': case 'dag': case 'tfjs': return `json.${r.pick(jsonOps)}`;
    case 'npy': return `npy.${r.pick(npyOps)}`;
  }
}

/** Case `index` of run `runSeed` over `corpus` (deterministic). */
export function generateCase(runSeed: number, index: number, corpus: readonly Seed[]): FuzzCase {
  const r = new Rng(caseSeed(runSeed, index));
  const present = targetWeights.filter(([, t]) => corpus.some((s) => s.target === t));
  const target = r.weighted(present);
  const seed = r.pick(corpus.filter((s) => s.target === target)).name;
  const count = r.weighted([[5, 1], [4, 2], [3, 3], [2, 4], [1, 6]]);
  const mutations: Mutation[] = [];
  for (let i = 0; i < count; i++) {
    const op = r.bool(0.8) ? structuredOp(r, target, seed) : `bytes.${r.pick(byteOps)}`;
    mutations.push({ op, seed: r.seed() });
  }
  return { index, target, seed, mutations };
}

/** The bytes of a case. Consecutive ONNX mutations share one decode/encode; a seed that no longer decodes
 *  (after a byte mutation) skips its structured ONNX mutations. */
export function materialize(c: Pick<FuzzCase, 'seed' | 'mutations'>, corpus: ReadonlyMap<string, Seed>): Uint8Array {
  const seed = corpus.get(c.seed);
  if (!seed) throw new Error(`fuzz: unknown corpus seed '${c.seed}'`);
  let bytes = seed.bytes;
  for (let i = 0; i < c.mutations.length; i++) {
    const { op, seed: s } = c.mutations[i];
    const [family, name] = op.split('.', 2);
    switch (family) {
      case 'bytes': bytes = mutateBytes(bytes, name as ByteOp, s); break;
      case 'tflite': bytes = mutateTflite(bytes, name as TfliteOp, s); break;
      case 'zip': bytes = mutateZip(bytes, name as ZipOp, s); break;
      case 'cfg': bytes = mutateCfg(bytes, name as CfgOp, s); break;
      case 'json': bytes = mutateJson(bytes, name as JsonOp, s); break;
      case 'npy': bytes = mutateNpy(bytes, name as NpyOp, s); break;
      case 'onnx': {
        let j = i;
        while (j + 1 < c.mutations.length && c.mutations[j + 1].op.startsWith('onnx.')) j++;
        let model;
        try { model = decodeModel(bytes, 'fuzz'); } catch { i = j; break; }
        for (let k = i; k <= j; k++) mutateOnnxModel(model, c.mutations[k].op.slice(5) as OnnxOp, c.mutations[k].seed);
        bytes = encodeModel(model);
        i = j;
        break;
      }
      default: throw new Error(`fuzz: unknown mutation '${op}'`);
    }
  }
  return bytes;
}
