// The bench's orchestration: interleaved timing, statistics rows, profile reading, the per-module join and
// a whole runBench with onnxruntime's providers and a stand-in for fcm-opt's sessions (the runtime's own
// correctness is tested in test/runtime).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureModels } from '../../fixtures/models.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { fcmDomain, type Graph } from '../../src/graph/ir.js';
import { loadHw } from '../../src/planner/hw.js';
import { planFusion } from '../../src/planner/index.js';
import type { Plan } from '../../src/planner/plan.js';
import { applyPlan } from '../../src/rewrite/apply-plan.js';
import { fuseEpilogues } from '../../src/rewrite/epilogues.js';
import { contestantNames, joinLayers, runBench, summarize, timeContestants, type Contestant } from '../../src/bench/bench.js';
import { formatBench } from '../../src/bench/format.js';
import { normalizeProfile, type CreateSessionOptions } from '../../src/bench/runtime.js';
import { chromiumPath } from '../../src/bench/litert.js';
import { assertFcmAsync } from '../converters/onnx-helpers.js';
import { buildSeedMobileNetV1 } from '../../fixtures/tflite-builder.js';
import { planningInput } from '../../src/tune/tune.js';

test('timeContestants: warm-up untimed, runs interleaved with the order rotated each round, progress counted', async () => {
  const calls: string[] = [];
  const c = (name: string): Contestant => ({ name, run: async () => { calls.push(name); } });
  const progress: number[] = [];
  const times = await timeContestants([c('a'), c('b'), c('c')], 3, 2, (done, total) => { assert.equal(total, 15); progress.push(done); });
  assert.deepEqual(calls.join(''), 'abc' + 'bca' + 'cab' + 'abc' + 'bca');
  assert.deepEqual(progress, Array.from({ length: 15 }, (_, i) => i + 1));
  assert.deepEqual(times.map((t) => t.length), [3, 3, 3]);
  // Each time lands in its own contestant's row.
  const slow: Contestant = { name: 's', run: () => new Promise((r) => setTimeout(r, 20)) };
  const [fast, slowTimes] = await timeContestants([c('f'), slow], 4, 0);
  assert.ok(Math.min(...slowTimes) > Math.max(...fast));
  await assert.rejects(timeContestants([{ name: 'x', run: async () => { throw new Error('boom'); } }], 1, 0), /boom/);
});

test('timeContestants: blocks of consecutive timed runs per contestant, rotated each round, the last block short', async () => {
  const calls: string[] = [];
  const c = (name: string): Contestant => ({ name, run: async () => { calls.push(name); } });
  const progress: number[] = [];
  const times = await timeContestants([c('a'), c('b')], 5, 1, (done, total) => { assert.equal(total, 12); progress.push(done); }, 2);
  // warm-up 'ab', then rounds of two runs each, rotation continuing: bb aa | aa bb | b a
  assert.equal(calls.join(''), 'ab' + 'bbaa' + 'aabb' + 'ba');
  assert.deepEqual(times.map((t) => t.length), [5, 5]);
  assert.equal(progress.length, 12);
});

test('summarize: min, mean, median, p90, p99, images per second and ratios to the first row (the fused plan)', () => {
  const rows = summarize(['fused', 'other'], [[2, 1, 3, 10], [4, 4, 6, 4]], 2);
  assert.deepEqual(rows, [
    { name: 'fused', medianMs: 2.5, p90Ms: 10, minMs: 1, meanMs: 4, p99Ms: 10, imagesPerS: 800, ratioToFused: 1 },
    { name: 'other', medianMs: 4, p90Ms: 6, minMs: 4, meanMs: 4.5, p99Ms: 6, imagesPerS: 500, ratioToFused: 1.6 },
  ]);
  // p99 is nearest-rank: with 200 runs, the 198th smallest.
  const many = Array.from({ length: 200 }, (_, i) => i + 1);
  assert.equal(summarize(['x'], [many])[0].p99Ms, 198);
});

test('normalizeProfile: ms, us and ns fields, several dispatches of a node summed', () => {
  assert.deepEqual(normalizeProfile([{ node: 'a', gpuMs: 1 }, { name: 'b', op: 'Conv', us: 500 }, { node: 'a', durationNs: 2e6 }]), [
    { node: 'a', op: undefined, gpuMs: 3 }, { node: 'b', op: 'Conv', gpuMs: 0.5 },
  ]);
  assert.deepEqual(normalizeProfile({ nodes: [{ nodeName: 'c', timeUs: 1000n }] }), [{ node: 'c', op: undefined, gpuMs: 1 }]);
  assert.throws(() => normalizeProfile([{ node: 'a' }]), /no GPU times/);
  assert.throws(() => normalizeProfile(undefined), /no list/);
});

/** A small model, its plan on the lavapipe description, and its fused graph. */
async function planned(): Promise<{ path: string; graph: Graph; plan: Plan; fused: Graph }> {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-'));
  const path = join(dir, 'mobilenetv2_stack.onnx');
  writeFileSync(path, exportOnnx(fixtureModels.mobilenetv2_stack()));
  const graph = await loadModel(path);
  const plan = planFusion(toDag(graph), loadHw('lavapipe'), { mode: 'optimal', model: 'mobilenetv2_stack.onnx', dtypeBytes: 4 });
  return { path, graph, plan, fused: applyPlan(graph, plan) };
}

test('joinLayers: fused-node times go to their module, unfused layer times are summed per module', async () => {
  const { plan, fused, graph } = await planned();
  const pairs = plan.modules.map((m, i) => [m, i] as const).filter(([m]) => m.layers.length === 2);
  assert.ok(pairs.length >= 1, 'the plan fuses a pair');
  const fusedEntries = fused.nodes.map((n) => ({ node: n.name, op: n.op, gpuMs: 1 }));
  const unfusedEntries = fuseEpilogues(graph).nodes.map((n) => ({ node: n.name, op: n.op, gpuMs: 1 }));
  // A node outside the planner's layers (none is left in this model once epilogues are folded).
  unfusedEntries.push({ node: 'pool', op: 'GlobalAveragePool', gpuMs: 1 });
  const rows = joinLayers(plan, fused, fusedEntries, unfusedEntries);
  for (const [m, i] of pairs) {
    const row = rows.find((r) => r.module === i)!;
    assert.equal(row.fusedGpuMs, 1, 'one fused node');
    assert.equal(row.unfusedGpuMs, 2, 'two conv nodes');
    assert.equal(row.gma, m.gma);
    assert.equal(row.gmaUnfused, m.gmaUnfused);
  }
  const others = rows.filter((r) => r.module === null);
  assert.deepEqual(others, [{ module: null, kind: 'GlobalAveragePool', nodes: ['pool'], unfusedGpuMs: 1 }]);
  const total = (k: 'fusedGpuMs' | 'unfusedGpuMs') => rows.reduce((s, r) => s + (r[k] ?? 0), 0);
  assert.equal(total('fusedGpuMs'), fusedEntries.length);
  assert.equal(total('unfusedGpuMs'), unfusedEntries.length);
  assert.equal(fused.nodes.filter((n) => n.domain === fcmDomain).length, pairs.length);
  // A folded node named after the nodes it replaced ('conv+pool', a PointwiseMean) counts for its conv's module.
  const [m0, i0] = pairs[0];
  const second = m0.nodes![1];
  const folded = unfusedEntries.map((e) => (e.node === second ? { ...e, node: `${second}+pool` } : e)).filter((e) => e.node !== 'pool');
  const joined = joinLayers(plan, fused, fusedEntries, folded);
  assert.equal(joined.find((r) => r.module === i0)!.unfusedGpuMs, 2, 'the folded node in its module');
  assert.ok(!joined.some((r) => r.module === null && r.nodes.includes(`${second}+pool`)));
});

test('runBench: four rows in order, onnxruntime timed for real, per-module join, JSON fields', async () => {
  const { path, graph, fused } = await planned();
  const made: CreateSessionOptions[] = [];
  let runsSeen = 0;
  const createSession = async (model: string | Uint8Array, o: CreateSessionOptions) => {
    assert.equal(model, path);
    made.push(o);
    const g = o.plan === 'unfused' ? fuseEpilogues(graph) : applyPlan(graph, o.plan);
    return {
      run: async (inputs: Record<string, Float32Array>) => {
        assert.deepEqual(Object.keys(inputs), graph.inputs);
        runsSeen++;
        return Object.fromEntries(graph.outputs.map((y) => [y, new Float32Array(graph.tensors.get(y)!.shape.reduce((a, b) => a * b, 1))]));
      },
      profile: () => g.nodes.map((n) => ({ node: n.name, op: n.op, gpuUs: 250 })),
      dispose: () => undefined,
    };
  };
  const report = await runBench(path, { hw: 'lavapipe', runs: 3, warmup: 1, createSession });
  // The unfused session first (it tells which executor runs the model), then the fused one with the plan.
  assert.equal(made.length, 2);
  assert.equal(made[0].plan, 'unfused');
  assert.ok(made[1].plan !== 'unfused' && made[1].plan.modules.length > 0);
  // 3 timed + 1 warm-up runs each, then 10 back-to-back runs each before the interleaved profiles.
  assert.equal(runsSeen, 2 * 4 + 2 * 10);
  assert.deepEqual(report.results.map((r) => r.name), contestantNames.slice(0, 4), "an .onnx model: no LiteRT.js row");
  for (const r of report.results) {
    if (r.unavailable !== undefined) {
      assert.equal(r.name, 'onnxruntime webgpu', 'only the WebGPU provider may be unavailable');
      assert.ok(r.unavailable.length > 0);
      continue;
    }
    assert.ok(r.medianMs! > 0 && r.p90Ms! >= r.medianMs!, `${r.name}: ${r.medianMs} / ${r.p90Ms}`);
    assert.ok(r.ratioToFused! > 0);
  }
  assert.equal(report.results[0].ratioToFused, 1);
  assert.equal(report.batch, 1);
  assert.equal(report.runs, 3);
  assert.equal(report.hw, 'lavapipe');
  assert.equal(report.layersUnavailable, undefined);
  const fusedRows = report.layers.filter((l) => l.module !== null && l.nodes.length >= 2 && ['pwdw', 'dwpw', 'pwpw'].includes(l.kind));
  assert.equal(fusedRows.length, fused.nodes.filter((n) => n.domain === fcmDomain).length);
  for (const l of fusedRows) {
    assert.equal(l.fusedGpuMs, 0.25);
    assert.equal(l.unfusedGpuMs, 0.5);
  }
  const json = JSON.parse(JSON.stringify(report));
  for (const k of ['model', 'hw', 'device', 'batch', 'runs', 'results', 'layers']) assert.ok(k in json, k);
  const text = formatBench(report);
  assert.match(text, /fcm-opt fused(\s+\d+\.\d{3}){5}\s+\d+\.\d\s+1\.00x/);
  assert.match(text, /onnxruntime cpu/);
  assert.match(text, /GMA unfused/);
});

test('runBench on an int8 TFLite model: float feeds on the uint8 input\'s grid, planned with 1-byte elements when the integer executor runs it, no onnxruntime', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-int8-'));
  const path = join(dir, 'mbv1-32.tflite');
  writeFileSync(path, buildSeedMobileNetV1(7, 32));
  const g = await loadModel(path);
  const x = g.tensors.get(g.inputs[0])!;
  const made: CreateSessionOptions[] = [];
  const fedValues: Float32Array[] = [];
  const createSession = async (_model: string | Uint8Array, o: CreateSessionOptions) => {
    made.push(o);
    return {
      path: 'int8',
      run: async (inputs: Record<string, Float32Array>) => {
        fedValues.push(inputs[g.inputs[0]]);
        return Object.fromEntries(g.outputs.map((y) => [y, new Float32Array(g.tensors.get(y)!.shape.reduce((a, b) => a * b, 1))]));
      },
      profile: () => [],
      dispose: () => undefined,
    };
  };
  const hw = loadHw('lavapipe');
  const report = await runBench(path, { hw: 'lavapipe', runs: 2, warmup: 0, createSession, litert: false });
  const { dag, dtypeBytes } = planningInput(g, hw, true);
  assert.equal(dtypeBytes, 1);
  assert.deepEqual(made[1].plan, planFusion(dag, hw, { mode: 'optimal', model: 'mbv1-32.tflite', dtypeBytes: 1, batch: 1 }));
  const [scale, zp] = [x.quant!.scale[0], x.quant!.zeroPoint[0]];
  const v = fedValues[0];
  assert.equal(v.length, 3 * 32 * 32);
  let lo = Infinity, hi = -Infinity;
  for (const f of v) {
    const q = Math.round(f / scale) + zp;
    assert.ok(q >= 0 && q <= 255 && Math.abs(scale * (q - zp) - f) <= 1e-6 * Math.max(1, Math.abs(f)), `${f} is not on the grid`);
    lo = Math.min(lo, q); hi = Math.max(hi, q);
  }
  assert.ok(lo <= 2 && hi >= 253, `q spans ${lo}..${hi}`);
  assert.deepEqual(report.results.map((r) => r.name), ['fcm-opt fused', 'fcm-opt unfused', 'onnxruntime webgpu', 'onnxruntime cpu']);
  for (const r of report.results.slice(2)) assert.match(r.unavailable ?? '', /not TFLite/);
});

/** Sessions that return zeros: the LiteRT.js tests time the other contestant. */
const zeroSessions = (g: Awaited<ReturnType<typeof loadModel>>) => async () => ({
  run: async () => Object.fromEntries(g.outputs.map((y) => [y, new Float32Array(g.tensors.get(y)!.shape.reduce((a, b) => a * b, 1))])),
  profile: () => [],
  dispose: () => undefined,
});

test('runBench on a .tflite model without Chromium: the LiteRT.js row says why it is unavailable', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-litert-'));
  const path = join(dir, 'mbv1-32.tflite');
  writeFileSync(path, buildSeedMobileNetV1(7, 32));
  const g = await loadModel(path);
  const report = await runBench(path, { hw: 'lavapipe', runs: 2, warmup: 0, createSession: zeroSessions(g), litert: { chromium: join(dir, 'no-chromium') } });
  const row = report.results.find((r) => r.name === 'litert.js cpu');
  assert.match(row?.unavailable ?? '', /no Chromium at .*no-chromium/);
  assert.match(formatBench(report), /litert\.js cpu\s+unavailable/);
});

test('runBench on a .tflite model at --batch 3: the sessions run 3 images, LiteRT.js (the file\'s batch of 1) is left out with the reason', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-litert-'));
  const path = join(dir, 'mbv1-32.tflite');
  writeFileSync(path, buildSeedMobileNetV1(7, 32));
  const g = await loadModel(path, { batch: 3 });
  let fed = 0;
  const sessions = async () => ({
    run: async (f: Record<string, Float32Array>) => { fed = Object.values(f)[0].length; return (await zeroSessions(g)()).run(); },
    profile: () => [],
    dispose: () => undefined,
  });
  const report = await runBench(path, { hw: 'lavapipe', runs: 2, warmup: 0, batch: 3, createSession: sessions as never });
  assert.equal(fed, 3 * 3 * 32 * 32);
  const row = report.results.find((r) => r.name === 'litert.js cpu');
  assert.match(row?.unavailable ?? '', /LiteRT\.js runs the file's own batch, not --batch 3/);
});

test('runBench on a .tflite model: LiteRT.js (headless Chromium) is timed on the same file', { skip: existsSync(chromiumPath()) ? false : `${chromiumPath()} is absent (Debian package 'chromium')` }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-litert-'));
  const path = join(dir, 'mbv1-32.tflite');
  writeFileSync(path, buildSeedMobileNetV1(7, 32));
  const g = await loadModel(path);
  const report = await runBench(path, { hw: 'lavapipe', runs: 3, warmup: 1, createSession: zeroSessions(g) });
  const row = report.results.find((r) => r.name === 'litert.js cpu');
  assert.equal(row?.unavailable, undefined, row?.unavailable);
  assert.ok(row!.medianMs! > 0 && row!.p90Ms! >= row!.medianMs!, `median ${row!.medianMs}, p90 ${row!.p90Ms}`);
  assert.ok(row!.ratioToFused! > 0);
  assert.match(row!.detail ?? '', /^LiteRT\.js 2\.5\.3, XNNPACK, 1 thread, HeadlessChrome\//);
  assert.match(formatBench(report), /litert\.js cpu(\s+\d+\.\d{3}){5}\s+\d+\.\d\s+\d+\.\d{2}x/);
});

test('runBench: bad options and a fixed batch are refused (exit 2)', async () => {
  const { path } = await planned();
  const never = async () => { throw new Error('no session expected'); };
  await assertFcmAsync(() => runBench(path, { hw: 'lavapipe', runs: 0, createSession: never }), 2, /--runs/);
  await assertFcmAsync(() => runBench(path, { hw: 'lavapipe', batch: 2, createSession: never }), 2, /fixed batch dimension of 1; --batch 2/);
  await assertFcmAsync(() => runBench(path, { hw: 'no-such-gpu', createSession: never }), 2, /no such hardware description/);
});

test('sessionDrift: the median fused / unfused ratio over the nodes both sessions run alike', async () => {
  const { sessionDrift } = await import('../../src/bench/bench.js');
  const fused = new Set(['pwdw', 'pwpw', 'dwpw']);
  const rows = [
    { kind: 'pw', fusedGpuMs: 1.36, unfusedGpuMs: 1 }, { kind: 'dw', fusedGpuMs: 2.8, unfusedGpuMs: 2 },
    { kind: 's', fusedGpuMs: 4, unfusedGpuMs: 3 }, { kind: 'pwdw', fusedGpuMs: 1, unfusedGpuMs: 5 },
    { kind: 'pw', fusedGpuMs: undefined, unfusedGpuMs: 1 },
  ];
  // 1.36, 1.4, 1.333: the fused module and the unmeasured node do not count.
  assert.ok(Math.abs(sessionDrift(rows, fused) - 1.36) < 1e-12);
  assert.equal(sessionDrift([{ kind: 'pw', fusedGpuMs: 2, unfusedGpuMs: 2 }, { kind: 'pw', fusedGpuMs: 3, unfusedGpuMs: 2 }], fused), 1.25);
  assert.ok(Number.isNaN(sessionDrift([{ kind: 'pwdw', fusedGpuMs: 1, unfusedGpuMs: 2 }], fused)));
});
