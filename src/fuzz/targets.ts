// What each fuzz input goes through: everything a user's file reaches before the GPU. The only acceptable
// outcomes are success or an FcmError (src/errors.ts); the engine treats anything else as a bug.
//   onnx   : loadChecked (import, prepareGraph: validation, folding, shape inference; toDag -> validateDag)
//            -> planFusion (optimal and fuseplanner) -> applyPlan -> exportOptimized -> readOptimized, and
//            exportOnnx of the prepared graph; readOptimized of the input itself (optimized-model reader).
//   tflite : the same from loadModel, plus the FusePlanner-convention DAG (tfliteDagFromFile).
//   bundle : a .task zip written to a file: loadChecked of FILE#a.tflite and of the file alone, loadModel of its bytes.
//   tfjs   : a TF.js graph model's model.json written beside the fixture's weight shard: the onnx target's path.
//   cfg    : parseHwCfg -> planFusion of a fixed DAG in both modes.
//   hwjson : parseHwJson -> the same.
//   dag    : loadDag (from a file, as the CLI reads it) -> planFusion in both modes -> formatPlan.
//   npy    : parseNpy -> encodeNpy -> parseNpy.
//   run    : small ONNX/TFLite models, mutated: loadChecked -> createSession fused (rtxa4000) and unfused on the GPU ->
//            run both on one seeded input; fused must match unfused.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toDag } from '../planner/to-dag.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { tfliteDagFromFile } from '../../converters/tflite/dag.js';
import { importOnnx } from '../../converters/onnx/import.js';
import { mobileNetV1Stack } from '../../fixtures/models.js';
import { prepareGraph } from '../graph/prepare.js';
import { FcmError } from '../errors.js';
import { exportOptimized } from '../export/optimized.js';
import { readOptimized } from '../export/read-optimized.js';
import type { Graph } from '../graph/ir.js';
import { encodeNpy, parseNpy } from '../npy.js';
import type { Dag } from '../planner/dag.js';
import { loadDag, validateDag } from '../planner/dag-load.js';
import { formatPlan } from '../planner/format.js';
import type { HwConfig } from '../planner/hw-config.js';
import { loadHw, parseHwCfg, parseHwJson } from '../planner/hw.js';
import { planFusion, planModes } from '../planner/index.js';
import type { Plan } from '../planner/plan.js';
import { applyPlan } from '../rewrite/apply-plan.js';
import { isQuantizedGraph } from '../graph/passes/dequantize.js';
import type { Target } from './corpus.js';
import { loadChecked } from '../pipeline/pipeline.js';
import { loadModel } from '../graph/load.js';
import { smallGraphModel } from '../../fixtures/tfjs-graph-builder.js';
import { createSession } from '../pipeline/session.js';

export interface TargetOptions {
  /** ImportOptions.maxMemory for the model loaders. */
  maxMemory: number;
}

/** A result that is no exception but still wrong: NaN/negative costs would mislead every later choice. */
class InvariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvariantError';
  }
}

function checkPlan(plan: Plan, where: string): void {
  const t = plan.totals;
  for (const [k, v] of Object.entries({ gma: t.gma, gmaUnfused: t.gmaUnfused })) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvariantError(`${where}: plan total ${k} is ${v}`);
  }
}

let fixedDag: Dag | null = null;
/** A small valid DAG for the hardware-description targets: toDag of the MobileNetV1-style fixture. */
async function smallDag(): Promise<Dag> {
  if (!fixedDag) {
    const g = prepareGraph(await importOnnx(exportOnnx(mobileNetV1Stack()), { source: 'mobilenetv1_stack.onnx' }));
    fixedDag = validateDag(toDag(g), 'mobilenetv1_stack.onnx (layer DAG)');
  }
  return fixedDag;
}

function planBoth(dag: Dag, hw: HwConfig, where: string): Plan[] {
  return planModes.map((mode) => {
    const plan = planFusion(dag, hw, { mode, model: 'fuzz' });
    checkPlan(plan, `${where} (${mode})`);
    formatPlan(plan, dag);
    return plan;
  });
}

async function modelPipeline(bytes: Uint8Array | string, source: string, opts: TargetOptions): Promise<void> {
  const hw = loadHw('rtxa4000');
  // The model check every command runs (import, then the layer DAG validated as a DAG file is).
  const { graph: g, dag } = await loadChecked(bytes, { source, maxMemory: opts.maxMemory });
  exportOnnx(g);
  const [optimal] = planBoth(dag, hw, source);
  const fused = applyPlan(g, optimal);
  // A quantized model has no optimized ONNX form (exportOptimized refuses it, exit 3, as `-o` does): the rewrite is
  // as far as its pipeline goes here; the run target takes it further, on the GPU.
  if (isQuantizedGraph(g)) return;
  const out = exportOptimized(fused, optimal);
  // The optimized file must read back (it is our own output: any error here is a bug too).
  try {
    await readOptimized(out, { source: `${source} (optimized)`, maxMemory: opts.maxMemory });
  } catch (e) {
    if (e instanceof FcmError) throw new InvariantError(`the optimized export of ${source} does not read back: ${e.message}`);
    throw e;
  }
}

/** Inputs larger than this are not made for a run case (the memory limit is the engine's, not the model's). */
const maxRunInputElements = 1 << 20;

/**
 * The run path as `fcm-opt run` and `check` take it: the shared model check (loadChecked), a session planned for
 * rtxa4000 and one unfused, each run on the same seeded input. Besides exceptions, the fused outputs must match the
 * unfused ones where those are finite and moderate (the FCM kernels compute the same sums in another order: 1e-3 of
 * the output's scale covers fp32 reassociation over the fixtures' reductions, a few thousand terms).
 */
async function runPath(bytes: Uint8Array, opts: TargetOptions): Promise<void> {
  const source = 'fuzz.run.model';
  const { graph } = await loadChecked(bytes, { source, maxMemory: opts.maxMemory });
  const feeds: Record<string, Float32Array> = {};
  let seed = 1;
  for (const x of graph.inputs) {
    const n = graph.tensors.get(x)!.shape.reduce((a, b) => a * b, 1);
    if (n > maxRunInputElements) return;
    feeds[x] = Float32Array.from({ length: n }, () => ((seed = (seed * 48271) % 2147483647) / 2147483647) * 2 - 1);
  }
  const outputs: Array<Record<string, { data: Float32Array }>> = [];
  for (const plan of ['auto', 'unfused'] as const) {
    try {
      const session = await createSession(graph, { plan, hw: 'rtxa4000', maxMemory: opts.maxMemory + 2 ** 30 });
      try {
        const ins = Object.fromEntries(session.inputNames.map((x) => [x, feeds[x]]));
        outputs.push(await session.run(ins));
      } finally {
        session.dispose();
      }
    } catch (e) {
      // A graph that passed every check must not fail on the GPU (validation errors are kernel bugs; lavapipe loses
      // no device): exit 5 here is a crash for the fuzzer, not a refusal.
      if (e instanceof FcmError && e.kind === 'gpu') throw new InvariantError(`${source} (${plan}): ${e.message}`);
      throw e;
    }
  }
  const [fused, unfused] = outputs;
  for (const [name, ref] of Object.entries(unfused)) {
    const got = fused[name]?.data;
    if (!got || got.length !== ref.data.length) throw new InvariantError(`${source}: output '${name}' has ${got?.length} values fused, ${ref.data.length} unfused`);
    let scale = 1;
    for (const v of ref.data) {
      if (!Number.isFinite(v) || Math.abs(v) > 1e6) return;
      scale = Math.max(scale, Math.abs(v));
    }
    for (let i = 0; i < got.length; i++) {
      if (!(Math.abs(got[i] - ref.data[i]) <= 1e-3 * scale)) {
        throw new InvariantError(`${source}: output '${name}'[${i}] is ${got[i]} fused, ${ref.data[i]} unfused (tolerance ${1e-3 * scale})`);
      }
    }
  }
}

export async function runTarget(target: Target, bytes: Uint8Array, opts: TargetOptions): Promise<void> {
  switch (target) {
    case 'onnx': {
      // The optimized-model reader takes any ONNX file; run it first, then the full pipeline.
      const errors: unknown[] = [];
      try { await readOptimized(bytes, { source: 'fuzz.onnx', maxMemory: opts.maxMemory }); } catch (e) { errors.push(e); }
      try { await modelPipeline(bytes, 'fuzz.onnx', opts); } catch (e) { errors.push(e); }
      // Report a non-FcmError first (that is the bug), else the first FcmError.
      const bug = errors.find((e) => !(e instanceof FcmError));
      if (bug !== undefined) throw bug;
      if (errors.length > 0) throw errors[0];
      return;
    }
    case 'tflite': {
      const errors: unknown[] = [];
      try { await tfliteDagFromFile(bytes, { source: 'fuzz.tflite', maxMemory: opts.maxMemory }); } catch (e) { errors.push(e); }
      try { await modelPipeline(bytes, 'fuzz.tflite', opts); } catch (e) { errors.push(e); }
      const bug = errors.find((e) => !(e instanceof FcmError));
      if (bug !== undefined) throw bug;
      if (errors.length > 0) throw errors[0];
      return;
    }
    case 'bundle': {
      const errors: unknown[] = [];
      const dir = mkdtempSync(join(tmpdir(), 'fcm-fuzz-bundle-'));
      try {
        const path = join(dir, 'fuzz.task');
        writeFileSync(path, bytes);
        for (const p of [`${path}#a.tflite`, path]) {
          try { await loadChecked(p, { maxMemory: opts.maxMemory }); } catch (e) { errors.push(e); }
        }
        try { await loadModel(bytes, { source: 'fuzz.task', maxMemory: opts.maxMemory }); } catch (e) { errors.push(e); }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      const bug = errors.find((e) => !(e instanceof FcmError));
      if (bug !== undefined) throw bug;
      if (errors.length > 0) throw errors[0];
      return;
    }
    case 'tfjs': {
      const dir = mkdtempSync(join(tmpdir(), 'fcm-fuzz-tfjs-'));
      try {
        const path = join(dir, 'model.json');
        writeFileSync(path, bytes);
        writeFileSync(join(dir, 'group1-shard1of1.bin'), smallGraphModel().shard);
        await modelPipeline(path, 'model.json', opts);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      return;
    }
    case 'cfg': {
      const hw = parseHwCfg(new TextDecoder().decode(bytes), 'fuzz.cfg', { warn: () => undefined });
      planBoth(await smallDag(), hw, 'fuzz.cfg');
      return;
    }
    case 'hwjson': {
      const hw = parseHwJson(new TextDecoder().decode(bytes), 'fuzz.hw.json');
      planBoth(await smallDag(), hw, 'fuzz.hw.json');
      return;
    }
    case 'dag': {
      // Through a file, as `fcm-opt plan model_dag.json` reads it.
      const dir = mkdtempSync(join(tmpdir(), 'fcm-fuzz-dag-'));
      try {
        const path = join(dir, 'model_dag.json');
        writeFileSync(path, bytes);
        const dag = loadDag(path, opts.maxMemory);
        planBoth(dag, loadHw('rtxa4000'), path);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      return;
    }
    case 'run': {
      await runPath(bytes, opts);
      return;
    }
    case 'npy': {
      const a = parseNpy(bytes, 'fuzz.npy');
      const again = parseNpy(encodeNpy(a), 'fuzz.npy (re-encoded)');
      if (again.data.length !== a.data.length) throw new InvariantError('npy round trip changed the element count');
      return;
    }
  }
}
