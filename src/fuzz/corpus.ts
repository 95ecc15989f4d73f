// The seed inputs the fuzzer mutates, built in code (fixtures/) or read from the source tree: the ONNX
// fixture models of fixtures/models.ts, an optimized model (fused nodes + functions + plan metadata), the
// TFLite fixtures of fixtures/tflite-builder.ts, the shipped hw_configs/ (.cfg and .json), the reference
// layer DAGs and the DAGs toDag makes of the fixtures, and small .npy files.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportOnnx } from '../../converters/onnx/export.js';
import { importOnnx } from '../../converters/onnx/import.js';
import { toDag } from '../planner/to-dag.js';
import { fixtureModels, tinyDetector, tinyPyramid } from '../../fixtures/models.js';
import { buildMobileNetStyle } from '../../fixtures/tflite-builder.js';
import { buildZip } from '../../fixtures/zip-builder.js';
import { smallGraphModel } from '../../fixtures/tfjs-graph-builder.js';
import { prepareGraph } from '../graph/prepare.js';
import { exportOptimized } from '../export/optimized.js';
import { hwConfigsDir, loadHw } from '../planner/hw.js';
import { planFusion } from '../planner/index.js';
import { applyPlan } from '../rewrite/apply-plan.js';
import { encodeNpy } from './npy-format.js';

export type Target = 'onnx' | 'tflite' | 'bundle' | 'tfjs' | 'cfg' | 'hwjson' | 'dag' | 'npy' | 'run';
export const targets: readonly Target[] = ['onnx', 'tflite', 'bundle', 'tfjs', 'cfg', 'hwjson', 'dag', 'npy', 'run'];

/** File extension of each target's inputs (regression files are named with it). */
export const targetExt: Record<Target, string> = {
  onnx: '.onnx', tflite: '.tflite', bundle: '.task', tfjs: '.tfjs.json', cfg: '.cfg', hwjson: '.hw.json', dag: '.dag.json', npy: '.npy', run: '.run.model',
};

export function targetOfFile(name: string): Target | null {
  // Longest extension first: '.run.model' and '.hw.json' before shorter ones that end them.
  for (const t of [...targets].sort((a, b) => targetExt[b].length - targetExt[a].length)) if (name.endsWith(targetExt[t])) return t;
  return null;
}

export interface Seed {
  name: string;
  target: Target;
  bytes: Uint8Array;
}

/** The project root: the folder with package.json and hw_configs/, from the cwd (npm scripts and tests run there). */
export function projectRoot(): string {
  return join(hwConfigsDir(), '..');
}

const utf8 = (s: string) => new TextEncoder().encode(s);

export async function buildCorpus(): Promise<Seed[]> {
  const seeds: Seed[] = [];
  // ONNX fixtures, as exportOnnx writes them.
  for (const [name, make] of Object.entries(fixtureModels)) {
    seeds.push({ name: `onnx:${name}`, target: 'onnx', bytes: exportOnnx(make()) });
  }
  // An optimized model: fused nodes, model-local functions, plan metadata (the reader's input).
  {
    const bytes = exportOnnx(fixtureModels.mobilenetv2_stack());
    const g = prepareGraph(await importOnnx(bytes, { source: 'mobilenetv2_stack.onnx' }));
    const plan = planFusion(toDag(g), loadHw('rtxa4000'), { mode: 'optimal', model: 'mobilenetv2_stack.onnx' });
    seeds.push({ name: 'onnx:mobilenetv2_stack.optimized', target: 'onnx', bytes: exportOptimized(applyPlan(g, plan), plan) });
  }
  // TFLite fixtures: float and int8 (quantization parameters, QUANTIZE/DEQUANTIZE).
  seeds.push({ name: 'tflite:mobilenet_style_f32', target: 'tflite', bytes: buildMobileNetStyle({ int8: false, seed: 1, size: 16 }) });
  seeds.push({ name: 'tflite:mobilenet_style_int8', target: 'tflite', bytes: buildMobileNetStyle({ int8: true, seed: 2, size: 16 }) });
  // Model bundles (.task zips): two models, a prefix, one deflated, a file that is no model; one model in a nested
  // bundle. The target opens member 'a.tflite' and the bundle alone.
  {
    const f32 = buildMobileNetStyle({ int8: false, seed: 5, size: 8 }), int8 = buildMobileNetStyle({ int8: true, seed: 6, size: 8 });
    seeds.push({ name: 'bundle:two_models', target: 'bundle', bytes: buildZip([['a.tflite', f32, 'stored'], ['b.tflite', int8, 'deflated'], ['labels.txt', utf8('person\n'), 'stored']], 2) });
    seeds.push({ name: 'bundle:nested', target: 'bundle', bytes: buildZip([['inner.task', buildZip([['a.tflite', f32, 'deflated']]), 'stored']]) });
  }
  // A TF.js graph model's model.json (the target writes the fixture's shard beside it).
  seeds.push({ name: 'tfjs:small_graph', target: 'tfjs', bytes: smallGraphModel().json });
  // The run path (import, plan, rewrite, compile, GPU session, run fused and unfused): small models only, since
  // every case creates two sessions on the GPU (lavapipe in CI). Names say which mutator applies.
  for (const name of ['classifier_head', 'mobilenetv1_stack', 'squeeze_excite'] as const) {
    seeds.push({ name: `run:onnx:${name}`, target: 'run', bytes: exportOnnx(fixtureModels[name]()) });
  }
  // Detection heads (Transposes to channels-last) and a feature pyramid (Resizes read as residuals): the store folds.
  seeds.push({ name: 'run:onnx:tiny_detector', target: 'run', bytes: exportOnnx(tinyDetector(1, { refusals: true })) });
  seeds.push({ name: 'run:onnx:tiny_pyramid', target: 'run', bytes: exportOnnx(tinyPyramid(1, { refusals: true })) });
  seeds.push({ name: 'run:tflite:mobilenet_style_f32', target: 'run', bytes: buildMobileNetStyle({ int8: false, seed: 3, size: 8 }) });
  seeds.push({ name: 'run:tflite:mobilenet_style_int8', target: 'run', bytes: buildMobileNetStyle({ int8: true, seed: 4, size: 8 }) });
  // Hardware descriptions shipped in hw_configs/.
  const hwDir = hwConfigsDir();
  for (const f of readdirSync(hwDir).sort()) {
    if (f.endsWith('.cfg')) seeds.push({ name: `cfg:${f}`, target: 'cfg', bytes: readFileSync(join(hwDir, f)) });
    if (f.endsWith('.json')) seeds.push({ name: `hwjson:${f}`, target: 'hwjson', bytes: readFileSync(join(hwDir, f)) });
  }
  // Layer DAGs: the FusePlanner reference's DAGs (copied into test/planner) and toDag of two fixtures.
  const dagDir = join(projectRoot(), 'test', 'planner', 'fuseplanner-reference', 'dags');
  if (existsSync(dagDir)) {
    for (const f of readdirSync(dagDir).sort()) {
      if (f.endsWith('.json')) seeds.push({ name: `dag:${f}`, target: 'dag', bytes: readFileSync(join(dagDir, f)) });
    }
  }
  for (const name of ['mobilenetv1_stack', 'squeeze_excite'] as const) {
    const g = prepareGraph(await importOnnx(exportOnnx(fixtureModels[name]()), { source: `${name}.onnx` }));
    seeds.push({ name: `dag:${name}`, target: 'dag', bytes: utf8(JSON.stringify(toDag(g))) });
  }
  // .npy: float32 NCHW input, int64 and uint8 vectors, a Fortran-order matrix, a scalar.
  seeds.push({ name: 'npy:f32', target: 'npy', bytes: encodeNpy('<f4', [1, 3, 4, 4], new Uint8Array(new Float32Array(48).map((_, i) => i / 7).buffer)) });
  seeds.push({ name: 'npy:i64', target: 'npy', bytes: encodeNpy('<i8', [5], new Uint8Array(new BigInt64Array([1n, -2n, 3n, 4n, 5n]).buffer)) });
  seeds.push({ name: 'npy:u1', target: 'npy', bytes: encodeNpy('|u1', [2, 3], Uint8Array.of(1, 2, 3, 4, 5, 6)) });
  seeds.push({ name: 'npy:f4_fortran', target: 'npy', bytes: encodeNpy('<f4', [2, 2], new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer), true) });
  seeds.push({ name: 'npy:scalar', target: 'npy', bytes: encodeNpy('<f8', [], new Uint8Array(new Float64Array([3.5]).buffer)) });
  return seeds;
}
