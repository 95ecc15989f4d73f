// Whole int8 graphs on the integer reference: the int8 MobileNet-style fixture and the rebuilt FusePlanner reference
// MobileNetV1 (uint8 in/out) run, give outputs of the right shape that are not degenerate, agree with a
// float64 evaluation layer by layer within 1 LSB, and end to end within a stated tolerance.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { importTflite } from '../../converters/tflite/import.js';
import { FcmError } from '../../src/errors.js';
import type { Graph } from '../../src/graph/ir.js';
import { tfliteRound } from '../../src/quant/fixedpoint.js';
import { qLimits } from '../../src/quant/reference.js';
import { evalFloatNode, runDequantizedFloat, runInt8Reference, type Int8RunResult } from '../../src/quant/run-reference.js';
import { buildMobileNetStyle, buildSeedMobileNetV1, rng } from '../../fixtures/tflite-builder.js';

function input(g: Graph, seed: number): Record<string, number[]> {
  const t = g.tensors.get(g.inputs[0])!;
  const r = rng(seed);
  const n = t.shape.reduce((a, b) => a * b, 1);
  const x = t.dtype === 'uint8' ? Array.from({ length: n }, () => Math.floor(r() * 256)) : Array.from({ length: n }, () => r() * 2 - 1);
  return { [g.inputs[0]]: x };
}

/**
 * Every node, recomputed in float64 from the integer run's own (dequantized) inputs and rounded to its output
 * grid, against the integer result. The integer kernels approximate the real multiplier to 2^-31 and round
 * (twice, in MultiplyByQuantizedMultiplier), so they may land on the neighbouring grid point of a value
 * close to a tie: at most 1 LSB. Returns the worst difference per op.
 */
function perLayerLsb(g: Graph, res: Int8RunResult): Map<string, number> {
  const worst = new Map<string, number>();
  const real = (name: string): Float64Array => {
    const t = g.tensors.get(name)!;
    const v = res.values.get(name);
    const data = v ? v.data : t.data!;
    const q = t.quant;
    if (!q || t.dtype === 'int32') return Float64Array.from(data as ArrayLike<number>);
    const inner = q.axis !== undefined ? t.shape.slice(q.axis + 1).reduce((a, b) => a * b, 1) : 1;
    return Float64Array.from(data as ArrayLike<number>, (x, i) => {
      const c = q.scale.length > 1 ? Math.floor(i / inner) % q.scale.length : 0;
      return q.scale[c] * (x - q.zeroPoint[c]);
    });
  };
  for (const n of g.nodes) {
    const got = res.values.get(n.outputs[0]);
    const yT = g.tensors.get(n.outputs[0])!;
    if (!got || !yT.quant || (yT.dtype !== 'int8' && yT.dtype !== 'uint8')) continue;
    if (n.op === 'QuantizeLinear' && !res.values.get(n.inputs[0])) continue;
    const f = evalFloatNode(g, n, real, (name) => res.values.get(name)?.shape ?? g.tensors.get(name)!.shape);
    const [lo, hi] = qLimits(yT.dtype);
    const { scale: [s], zeroPoint: [zp] } = yT.quant;
    let d = 0;
    for (let i = 0; i < f.length; i++) d = Math.max(d, Math.abs(Math.min(hi, Math.max(lo, tfliteRound(f[i] / s) + zp)) - got.data[i]));
    worst.set(n.op, Math.max(worst.get(n.op) ?? 0, d));
  }
  return worst;
}

const distinct = (a: ArrayLike<number>) => new Set(Array.from(a)).size;

describe('runInt8Reference', () => {
  it('runs the int8 MobileNet-style model: shapes, non-degenerate outputs, every layer within 1 LSB', async () => {
    const g = await importTflite(buildMobileNetStyle({ int8: true }), { source: 'mnet-int8.tflite' });
    const x = input(g, 5);
    const res = runInt8Reference(g, x);
    assert.deepEqual(res.outputs[0].shape, [1, 10]);
    assert.ok(res.dequantized[0] instanceof Float32Array);
    assert.ok(distinct(res.values.get('logits')!.data) > 5, 'logits vary');
    assert.ok(distinct(res.dequantized[0]) > 1, 'probabilities are not all equal');
    const sum = res.dequantized[0].reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) <= 10 / 256, `probabilities sum to ${sum}`);
    const worst = perLayerLsb(g, res);
    for (const op of ['Conv', 'Clip', 'Relu', 'Pad', 'Add', 'HardSwish', 'ReduceMean', 'Gemm', 'Softmax', 'QuantizeLinear']) {
      assert.ok(worst.has(op), `checked ${op}`);
    }
    for (const [op, d] of worst) assert.ok(d <= 1, `${op}: ${d} LSB`);
    // End to end against the float graph with activations on their grids: every layer's <= 1 LSB flips
    // are re-rounded by the next; on this model they never reach the output.
    const fq = runDequantizedFloat(g, x, { fakeQuant: true })[0];
    for (let i = 0; i < fq.length; i++) assert.ok(Math.abs(fq[i] - res.dequantized[0][i]) <= 1 / 256, `output ${i}`);
  });

  it('runs the rebuilt FusePlanner reference MobileNetV1 (uint8 in and out) within tolerance of the dequantized float model', async () => {
    const g = await importTflite(buildSeedMobileNetV1(), { source: 'mob_v1.tflite' });
    const x = input(g, 9);
    const res = runInt8Reference(g, x);
    assert.deepEqual(res.outputs[0].shape, [1, 1000]);
    assert.ok(res.outputs[0].data instanceof Uint8Array);
    assert.ok(distinct(res.values.get('reshape/Reshape')!.data) > 50, 'logits vary');
    assert.ok(distinct(res.outputs[0].data) > 3, 'probabilities are not all equal');
    const worst = perLayerLsb(g, res);
    for (const [op, d] of worst) assert.ok(d <= 1, `${op}: ${d} LSB`);
    // Against the float model (dequantized weights and biases, real-valued activations, no rounding), at the
    // logits (the last quantized layer), in units of their quantization step, leaving out the logits the
    // float model puts outside the int8 range (saturation is part of the int8 model). Tolerance: mean <= 1
    // LSB, max <= 5 LSB. Why: the integer model rounds 28 activations to their grids (uniform error, 1/sqrt(12)
    // LSB rms each) and the fixture's fan-in-scaled weights keep the gain from layer to layer near 1, so
    // the errors add in quadrature to about sqrt(28 / 12) = 1.5 LSB rms (mean |e| about 1.2, 3 sigma 4.6).
    // Measured over five inputs: mean 0.6, max 3.4. A wrong multiplier, zero point, pad value or rounding
    // mode shifts whole layers by many LSB. (Probabilities are not compared: one logit LSB is 0.18 here,
    // which moves a probability by up to 20 % of itself.)
    const logits = 'reshape/Reshape';
    const f = runDequantizedFloat({ ...g, outputs: [logits] }, x)[0];
    const { scale: [s], zeroPoint: [zp] } = g.tensors.get(logits)!.quant!;
    const got = res.values.get(logits)!.data;
    let maxLsb = 0, sumLsb = 0, n = 0;
    for (let i = 0; i < f.length; i++) {
      const want = f[i] / s + zp;
      if (want < -128 || want > 127) continue;
      const d = Math.abs(got[i] - want);
      maxLsb = Math.max(maxLsb, d); sumLsb += d; n++;
    }
    assert.ok(n > 800, `${n} logits inside the int8 range`);
    assert.ok(sumLsb / n <= 1, `mean |int8 - float| = ${sumLsb / n} LSB`);
    assert.ok(maxLsb <= 5, `max |int8 - float| = ${maxLsb} LSB`);
  });

  it('refuses ops without an integer reference and missing inputs', async () => {
    const g = await importTflite(buildMobileNetStyle({ int8: true }));
    assert.throws(() => runInt8Reference(g, {}), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /no value given for input/.test(e.message));
    const bad = { ...g, nodes: g.nodes.map((n) => (n.op === 'HardSwish' ? { ...n, op: 'Tanh' } : n)) };
    assert.throws(() => runInt8Reference(bad, input(g, 1)), (e: unknown) => e instanceof FcmError && /\(Tanh\): no integer reference for Tanh/.test(e.message));
  });
});
