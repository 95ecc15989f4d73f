// The float kernels with f16 storage (kernels/f16.ts): the WGSL rewrite itself, every f16 program of the zoo models
// compiling, cache keys apart from fp32's, and each kind of kernel run in f16 against a float64 reference.
//
// Tolerance of the f16 runs. The inputs are rounded to f16 first and the float64 reference is computed from those
// rounded values, so the only differences are the kernel's own: its f32 arithmetic, within the fp32 kernels' bound
// of 1e-4 * max(1, max |ref|) (layer-harness.ts assertClose says why), and the rounding of each stored result to f16,
// at most half an ulp: 2^-11 |value| in f16's normal range, 2^-25 below it (subnormals are 2^-24 apart). So
// |got - ref| <= 2^-11 |ref| + 2^-25 + 1e-4 max(1, max |ref|) per element; a load read with the wrong element type or
// offset, or a store left in f32, is off by O(1) or more.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice, getDevice, limitsOf, pipelineOf, readBack, runProgram } from './fused-harness.js';
import { activation, conv2d, epilogue, randomF32, type Tensor4 } from './reference.js';
import { broadcastBinary, matmulRef, numelOf, poolRef, reduceMeanRef, strides, transposeRef, unravel } from './reference-ops.js';
import { type LayerCase, programsOf, runLayer } from './layer-harness.js';
import { buildCase, describeCase, type FusedCase } from './fused-check.js';
import { halfFeedProgram, halfStorageWgsl, withStorage } from '../../kernels/f16.js';
import { kernelFor } from '../../kernels/registry.js';
import { type KernelProgram, defaultLimits } from '../../kernels/program.js';
import { fromHalf, roundHalf, toHalf, toHalfBits } from '../../src/runtime/half.js';
import { mobileNetV2, mobileNetV3Large } from '../../fixtures/zoo.js';
import { loadHw } from '../../src/planner/hw.js';
import { prepareForRun } from '../../src/pipeline/pipeline.js';

after(closeDevice);

const half = 2 ** -11, halfSub = 2 ** -25;

/** Element by element: |got - ref| <= 2^-11 |ref| + 2^-25 + atol (+ rtol |ref| for transcendental results). */
function assertHalfClose(got: ArrayLike<number>, ref: ArrayLike<number>, what: string, opts: { rtol?: number; atol?: number } = {}): void {
  assert.equal(got.length, ref.length, `${what}: length`);
  let maxRef = 0;
  for (let i = 0; i < ref.length; i++) maxRef = Math.max(maxRef, Math.abs(ref[i]));
  const atol = opts.atol ?? 1e-4 * Math.max(1, maxRef);
  let worst = -1, worstRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    const bound = (half + (opts.rtol ?? 0)) * Math.abs(ref[i]) + halfSub + atol;
    const r = Math.abs(got[i] - ref[i]) / bound;
    const ratio = Number.isNaN(r) ? Infinity : r;
    if (ratio > worstRatio) { worst = i; worstRatio = ratio; }
  }
  assert.ok(worstRatio <= 1, `${what}: element ${worst}: got ${got[worst]}, expected ${ref[worst]} (${worstRatio.toFixed(2)}x the bound)`);
}

let seed = 500;
const rnd = (shape: number[], scale = 1) => ({ data: Float32Array.from(randomF32(numelOf(shape), seed++), (v) => roundHalf(v * scale)), shape });

// ---- the conversions and the rewrite ------------------------------------------------------------------------

test('binary16 conversion rounds to nearest even, keeps subnormals, overflows to infinity', () => {
  assert.equal(toHalfBits(1), 0x3c00);
  assert.equal(toHalfBits(-2), 0xc000);
  assert.equal(toHalfBits(65504), 0x7bff);
  assert.equal(toHalfBits(65520), 0x7c00, 'half-way past the largest finite rounds to infinity');
  assert.equal(toHalfBits(2 ** -24), 0x0001, 'smallest subnormal');
  assert.equal(toHalfBits(2 ** -25), 0x0000, 'half of it ties to even: zero');
  assert.equal(toHalfBits(1.5 * 2 ** -25), 0x0001);
  assert.equal(toHalfBits(1 + 2 ** -11), 0x3c00, 'tie to even (down)');
  assert.equal(toHalfBits(1 + 3 * 2 ** -11), 0x3c02, 'tie to even (up)');
  assert.equal(toHalfBits(2 ** -14 - 2 ** -25), 0x0400, 'the largest subnormal rounds up into the normal range');
  assert.ok(Number.isNaN(fromHalf(toHalf([NaN]))[0]));
  assert.equal(fromHalf(toHalf([-Infinity]))[0], -Infinity);
  // Every f16 value survives the round trip.
  for (let h = 0; h < 0x7c00; h += 7) assert.equal(toHalfBits(fromHalf(Uint16Array.of(h))[0]), h);
});

test('the rewrite converts loads and stores of storage arrays only, comments dropped, compound stores read first', () => {
  const wgsl = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
var<workgroup> xs: array<f32, 4>;
// out[i] = x[i]; in a comment
@compute @workgroup_size(1) fn main() {
  var acc = w[0u].x * x[1u] + w [2u][3u];
  xs[0] = x[xs[1] > 0.0];
  out[0u] = acc + x[u32(out[1u])];
  out[1u] += acc;
}`;
  const got = halfStorageWgsl(wgsl);
  assert.ok(got.startsWith('enable f16;\n'));
  assert.match(got, /var<storage, read> x: array<f16>;/);
  assert.match(got, /var<storage, read> w: array<vec4<f16>>;/);
  assert.match(got, /var<storage, read_write> out: array<f16>;/);
  assert.match(got, /var<workgroup> xs: array<f32, 4>;/);
  assert.ok(!got.includes('in a comment'));
  assert.ok(got.includes('var acc = vec4<f32>(w[0u]).x * f32(x[1u]) + vec4<f32>(w[2u])[3u];'), got);
  assert.ok(got.includes('xs[0] = f32(x[xs[1] > 0.0]);'), got);
  assert.ok(got.includes('out[0u] = f16(acc + f32(x[u32(f32(out[1u]))]));'), got);
  assert.ok(got.includes('out[1u] = f16(f32(out[1u]) + (acc));'), got);
  assert.throws(() => halfStorageWgsl('@compute @workgroup_size(1) fn main() {}'), /no f32 storage array/);
});

test('f16 programs have cache keys of their own: no fp32 program shares one', async () => {
  const hw = loadHw('h100');
  const g = await prepareForRun(mobileNetV2(1), { plan: 'auto', hw });
  const shape = (x: string) => (x ? g.tensors.get(x)?.shape : undefined);
  const f32Keys = new Set<string>(), f16Keys = new Map<string, string>();
  for (const n of g.nodes) {
    for (const storage of ['f32', 'f16'] as const) {
      const k = kernelFor(n, n.inputs.map(shape), n.outputs.map((y) => shape(y) ?? []), defaultLimits, storage);
      if (k.kind === 'alias') continue;
      for (const p of k.programs) {
        if (storage === 'f32') { f32Keys.add(p.cacheKey); continue; }
        assert.ok(p.wgsl.startsWith('enable f16;'), p.cacheKey);
        // Equal f16 keys, equal programs.
        const seen = f16Keys.get(p.cacheKey);
        if (seen !== undefined) assert.equal(p.wgsl, seen, p.cacheKey);
        f16Keys.set(p.cacheKey, p.wgsl);
      }
    }
  }
  assert.ok(f16Keys.size > 20);
  for (const k of f16Keys.keys()) assert.ok(!f32Keys.has(k), `f16 program with the fp32 key ${k}`);
});

test('every f16 program of MobileNetV2 and V3 (fused and unfused) compiles', async () => {
  const device = await getDevice();
  assert.ok(device.features.has('shader-f16'), 'the test device has shader-f16 (lavapipe offers it)');
  const hw = loadHw('h100');
  const seen = new Set<string>();
  for (const model of [mobileNetV2(1), mobileNetV3Large(1)]) {
    for (const plan of ['unfused', 'auto'] as const) {
      const g = await prepareForRun(model, { plan, hw });
      const shape = (x: string) => (x ? g.tensors.get(x)?.shape : undefined);
      for (const n of g.nodes) {
        const k = kernelFor(n, n.inputs.map(shape), n.outputs.map((y) => shape(y) ?? []), limitsOf(device), 'f16');
        if (k.kind === 'alias') continue;
        for (const p of k.programs) {
          if (seen.has(p.cacheKey)) continue;
          seen.add(p.cacheKey);
          // WGSL validation (Tint) finds any f16/f32 mix the rewrite left: WGSL converts neither way implicitly.
          const info = await device.createShaderModule({ code: p.wgsl }).getCompilationInfo();
          const errs = info.messages.filter((m) => m.type === 'error');
          assert.equal(errs.length, 0, `${n.name} ${p.cacheKey}: ${errs[0]?.message}`);
        }
      }
    }
  }
  assert.ok(seen.size > 100, `${seen.size} programs`);
});

// ---- layer kernels in f16 -----------------------------------------------------------------------------------

interface ConvCase { n: number; c: number; h: number; w: number; f: number; k: number; stride?: number; pad?: number; group?: number; act?: string; params?: number[]; residual?: boolean; expect: string }

// One of each kernel the registry picks: pointwise gemm (with K slices), vec4 (staged weights), split-K, depthwise
// (stride 1 and 2), the general conv (stem).
const convCases: ConvCase[] = [
  { n: 1, c: 64, h: 64, w: 64, f: 64, k: 1, act: 'Clip', params: [0, 6], residual: true, expect: 'pointwise-gemm' },
  { n: 1, c: 20, h: 45, w: 45, f: 70, k: 1, act: 'HardSwish', expect: 'pointwise-gemm' },
  { n: 2, c: 6, h: 64, w: 64, f: 64, k: 1, act: 'Relu', residual: true, expect: 'pointwise-vec4' },
  { n: 2, c: 300, h: 1, w: 1, f: 19, k: 1, act: 'Relu', expect: 'pointwise-splitk' },
  { n: 1, c: 6, h: 9, w: 9, f: 6, k: 3, pad: 1, group: 6, act: 'Relu', expect: 'depthwise' },
  { n: 2, c: 5, h: 11, w: 8, f: 5, k: 3, stride: 2, pad: 1, group: 5, act: 'Clip', params: [0, 6], residual: true, expect: 'depthwise' },
  { n: 2, c: 3, h: 17, w: 15, f: 8, k: 3, stride: 2, pad: 1, act: 'Clip', params: [0, 6], expect: 'conv' },
];

for (const cc of convCases) {
  test(`f16 Conv ${cc.expect} ${JSON.stringify(cc)}`, async () => {
    const group = cc.group ?? 1, s = cc.stride ?? 1, p = cc.pad ?? 0;
    const x = rnd([cc.n, cc.c, cc.h, cc.w]);
    const w = rnd([cc.f, cc.c / group, cc.k, cc.k], 0.5);
    const b = rnd([cc.f]);
    const ref = conv2d({ data: x.data, shape: x.shape as Tensor4['shape'] }, { data: w.data, shape: w.shape as Tensor4['shape'] }, b.data,
      { strides: [s, s], pads: [p, p, p, p], group });
    const res = cc.residual ? rnd([...ref.shape]) : undefined;
    epilogue(ref, cc.act ?? '', cc.params, res?.data);
    const attrs: Record<string, unknown> = { kernel: [cc.k, cc.k], strides: [s, s], pads: [p, p, p, p], dilations: [1, 1], group };
    if (cc.act) { attrs.activation = cc.act; if (cc.params) attrs.activationParams = cc.params; }
    const lc: LayerCase = { op: 'Conv', attrs, inputs: [x, w, b, res ?? null], outputShapes: [[...ref.shape]] };
    const [prog] = await programsOf(lc, 'f16');
    assert.ok(prog.cacheKey.startsWith(`f16|${cc.expect}`), `${prog.cacheKey} is not ${cc.expect}`);
    const [got] = await runLayer(lc, 'f16');
    assertHalfClose(got, ref.data, cc.expect);
  });
}

// WGSL's exp is within 3 + 2|x| ULP of f32 (ops.test.ts): 2e-5 relative for the |x| <= 40 here, on top of the f16 bound.
const expRtol = 2e-5;

const fns: Record<string, (a: number, b: number) => number> = { Add: (a, b) => a + b, Mul: (a, b) => a * b, Div: (a, b) => a / b };
for (const [op, as, bs, os] of [['Add', [2, 3, 5, 7], [2, 3, 5, 7], [2, 3, 5, 7]], ['Mul', [2, 6, 5, 3], [2, 6, 1, 1], [2, 6, 5, 3]],
  ['Div', [1, 6, 1, 1], [2, 1, 5, 3], [2, 6, 5, 3]]] as [string, number[], number[], number[]][]) {
  test(`f16 ${op} [${as}] x [${bs}]`, async () => {
    const a = rnd(as), b = rnd(bs);
    if (op === 'Div') for (let i = 0; i < b.data.length; i++) b.data[i] = roundHalf(0.5 + Math.abs(b.data[i]));
    const [got] = await runLayer({ op, inputs: [a, b], outputShapes: [os] }, 'f16');
    assertHalfClose(got, broadcastBinary(a.data, as, b.data, bs, os, fns[op]), op);
  });
}

for (const [op, params] of [['HardSwish', []], ['Sigmoid', []], ['Clip', [-0.5, 0.25]]] as [string, number[]][]) {
  test(`f16 standalone ${op}`, async () => {
    const x = rnd([2, 3, 5, 7], 8);
    const attrs = op === 'Clip' ? { min: params[0], max: params[1] } : {};
    const [got] = await runLayer({ op, attrs, inputs: [x], outputShapes: [x.shape] }, 'f16');
    const ref = Array.from(x.data, activation(op, params));
    // Sigmoid's tail (3.4e-4 at -8) is checked relative to each value: no absolute term beyond f16's subnormal step.
    assertHalfClose(got, ref, op, op === 'Sigmoid' ? { rtol: expRtol, atol: 0 } : {});
  });
}

test('f16 GlobalAveragePool and ReduceMean (sums in f32)', async () => {
  const x = rnd([1, 3, 47, 53]);
  const [gap] = await runLayer({ op: 'GlobalAveragePool', inputs: [x], outputShapes: [[1, 3, 1, 1]] }, 'f16');
  assertHalfClose(gap, reduceMeanRef(x.data, x.shape, [2, 3]), 'gap');
  const y = rnd([2, 5, 7, 3]);
  const [rm] = await runLayer({ op: 'ReduceMean', attrs: { axes: [1], keepdims: 0 }, inputs: [y], outputShapes: [[2, 7, 3]] }, 'f16');
  assertHalfClose(rm, reduceMeanRef(y.data, y.shape, [1]), 'reducemean');
});

test('f16 MaxPool and AveragePool', async () => {
  const x = rnd([2, 5, 9, 11]);
  const [mp] = await runLayer({ op: 'MaxPool', attrs: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }, inputs: [x], outputShapes: [[2, 5, 5, 6]] }, 'f16');
  assertHalfClose(mp, poolRef(x.data, x.shape, [2, 5, 5, 6], 'max', [3, 3], [2, 2], [1, 1, 1, 1]), 'maxpool');
  const [ap] = await runLayer({ op: 'AveragePool', attrs: { kernel: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], countIncludePad: 0 }, inputs: [x], outputShapes: [[2, 5, 5, 6]] }, 'f16');
  assertHalfClose(ap, poolRef(x.data, x.shape, [2, 5, 5, 6], 'avg', [3, 3], [2, 2], [1, 1, 1, 1]), 'avgpool');
});

test('f16 Gemm and MatMul', async () => {
  const a = rnd([3, 37]), b = rnd([10, 37]), c = rnd([10]);
  const [got] = await runLayer({ op: 'Gemm', attrs: { transB: 1, alpha: 0.5, beta: 2 }, inputs: [a, b, c], outputShapes: [[3, 10]] }, 'f16');
  assertHalfClose(got, matmulRef(a.data, b.data, 3, 37, 10, false, true).map((v, i) => 0.5 * v + 2 * c.data[i % 10]), 'gemm');
  const m = rnd([2, 3, 4]), n = rnd([4, 5]);
  const [mm] = await runLayer({ op: 'MatMul', inputs: [m, n], outputShapes: [[2, 3, 5]] }, 'f16');
  assertHalfClose(mm, [...matmulRef(m.data.subarray(0, 12), n.data, 3, 4, 5), ...matmulRef(m.data.subarray(12), n.data, 3, 4, 5)], 'matmul');
});

test('f16 data movement: Concat, Split, Slice, Transpose, Pad copy values exactly', async () => {
  const xs = [rnd([2, 3, 4, 5]), rnd([2, 1, 4, 5])];
  const [cat] = await runLayer({ op: 'Concat', attrs: { axis: 1 }, inputs: xs, outputShapes: [[2, 4, 4, 5]] }, 'f16');
  const catRef = Array.from({ length: 2 * 4 * 20 }, (_, i) => {
    const [n, c, y, x] = unravel(i, [2, 4, 4, 5]);
    return c < 3 ? xs[0].data[((n * 3 + c) * 4 + y) * 5 + x] : xs[1].data[(n * 4 + y) * 5 + x];
  });
  assert.deepEqual(Array.from(cat), catRef, 'concat');
  const x = rnd([2, 3, 7]);
  const parts = await runLayer({ op: 'Split', attrs: { axis: -1, split: [2, 5] }, inputs: [x], outputShapes: [[2, 3, 2], [2, 3, 5]] }, 'f16');
  assert.deepEqual(Array.from(parts[1]), Array.from({ length: 30 }, (_, i) => x.data[Math.floor(i / 5) * 7 + 2 + (i % 5)]), 'split');
  const s = rnd([2, 5, 6, 7]);
  const [sl] = await runLayer({ op: 'Slice', attrs: { starts: [1, -1, 0], ends: [100, -100, 5], axes: [1, 2, 3], steps: [2, -1, 2] }, inputs: [s], outputShapes: [[2, 2, 6, 3]] }, 'f16');
  assert.deepEqual(Array.from(sl), Array.from({ length: 72 }, (_, i) => { const [n, c, y, w] = unravel(i, [2, 2, 6, 3]); return s.data[((n * 5 + 1 + 2 * c) * 6 + (5 - y)) * 7 + 2 * w]; }), 'slice');
  const t = rnd([2, 3, 4, 5]);
  const [tr] = await runLayer({ op: 'Transpose', attrs: { perm: [0, 2, 3, 1] }, inputs: [t], outputShapes: [[2, 4, 5, 3]] }, 'f16');
  assert.deepEqual(Array.from(tr), Array.from(transposeRef(t.data, t.shape, [0, 2, 3, 1])), 'transpose');
  const p = rnd([1, 2, 4, 5]);
  const pads = [0, 0, 1, 2, 0, 1, 2, 3], os = [1, 3, 7, 10];
  const [pd] = await runLayer({ op: 'Pad', attrs: { pads, mode: 'constant', value: 0.75 }, inputs: [p], outputShapes: [os] }, 'f16');
  assert.deepEqual(Array.from(pd), Array.from({ length: numelOf(os) }, (_, i) => {
    const c = unravel(i, os).map((v, k) => v - pads[k]);
    return c.some((v, k) => v < 0 || v >= p.shape[k]) ? 0.75 : p.data[c.reduce((o, v, k) => o + v * strides(p.shape)[k], 0)];
  }), 'pad');
});

test('f16 Softmax (max, exponentials and row sums in f32) and BatchNormalization', async () => {
  for (const [shape, scale] of [[[2, 4, 3], 20], [[2, 1000], 12]] as [number[], number][]) {
    const x = rnd(shape, scale);
    const [got] = await runLayer({ op: 'Softmax', attrs: { axis: -1 }, inputs: [x], outputShapes: [x.shape] }, 'f16');
    const D = shape[shape.length - 1];
    const ref = Array.from({ length: x.data.length }, (_, i) => {
      const row = x.data.subarray(i - (i % D), i - (i % D) + D);
      const m = Math.max(...row);
      return Math.exp(x.data[i] - m) / row.reduce((s, v) => s + Math.exp(v - m), 0);
    });
    // Probabilities far below max: relative to each value (exp's f32 error on top of the f16 rounding).
    assertHalfClose(got, ref, `softmax [${shape}]`, { rtol: expRtol, atol: 0 });
  }
  const x = rnd([2, 3, 4, 5]);
  const [sc, b, m] = [rnd([3]), rnd([3]), rnd([3])];
  const v = { data: Float32Array.from(rnd([3]).data, (t) => roundHalf(0.5 + Math.abs(t))), shape: [3] };
  const [bn] = await runLayer({ op: 'BatchNormalization', attrs: { epsilon: 1e-3 }, inputs: [x, sc, b, m, v], outputShapes: [x.shape] }, 'f16');
  assertHalfClose(bn, Array.from(x.data, (t, i) => { const c = unravel(i, x.shape)[1]; return (t - m.data[c]) / Math.sqrt(v.data[c] + 1e-3) * sc.data[c] + b.data[c]; }), 'bn');
});

// ---- FCMs in f16: the intermediate stays f32 in workgroup memory, only the output is rounded ------------------------

async function runHalfProgram(p: KernelProgram, inputs: Float32Array[], outN: number): Promise<Float32Array> {
  const device = await getDevice();
  const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC;
  const make = (bits: Uint16Array) => {
    const b = device.createBuffer({ size: Math.max(4, Math.ceil(bits.byteLength / 4) * 4), usage: S | CS, mappedAtCreation: true });
    new Uint16Array(b.getMappedRange()).set(bits);
    b.unmap();
    return b;
  };
  const ins = inputs.map((d) => make(toHalf(d)));
  const out = make(new Uint16Array(outN).fill(0x7e00));
  device.pushErrorScope('validation');
  const pipeline = await pipelineOf(device, p.wgsl, p.name);
  const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [...ins, out].map((buffer, binding) => ({ binding, resource: { buffer } })) });
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bindGroup);
  pass.dispatchWorkgroups(...p.dispatch);
  pass.end();
  device.queue.submit([enc.finish()]);
  const raw = await readBack(device, out, 4 * Math.ceil(outN / 2));
  const err = await device.popErrorScope();
  for (const b of [...ins, out]) b.destroy();
  if (err) throw new Error(`${p.name}: ${err.message}`);
  return fromHalf(new Uint16Array(raw.buffer, 0, outN));
}

const fusedCases: FusedCase[] = [
  { kind: 'pwdw', n: 1, c: 8, h: 13, w: 11, m: 24, k: 3, stride: 1, pads: [1, 1, 1, 1], act1: 'Clip', params1: [0, 6], act2: 'Clip', params2: [0, 6], bias1: true, bias2: true },
  { kind: 'pwdw', n: 2, c: 6, h: 9, w: 9, m: 12, k: 3, stride: 2, pads: [1, 1, 1, 1], act1: 'HardSwish', act2: 'Relu', bias1: true },
  { kind: 'dwpw', n: 1, c: 16, h: 10, w: 12, f: 24, k: 3, pads: [1, 1, 1, 1], act1: 'Relu', bias1: true, bias2: true, residual: false },
  { kind: 'pwpw', n: 1, c: 12, h: 7, w: 9, m: 40, f: 16, act1: 'Relu', bias1: true, bias2: true, residual: true },
];

for (const c of fusedCases) {
  test(`f16 FCM ${describeCase(c)}`, async () => {
    const device = await getDevice();
    const built = buildCase(c, limitsOf(device), { reference: false });
    const L = built.layers;
    // Inputs rounded in place (the program's inputs are these same arrays), then the reference from them.
    for (const a of [L.x.data, L.w1.data, L.b1, L.w2.data, L.b2, L.res]) if (a) for (let i = 0; i < a.length; i++) a[i] = roundHalf(a[i]);
    const s = c.stride ?? 1, pads = c.pads ?? [0, 0, 0, 0];
    const dw = { strides: [s, s] as [number, number], pads, group: c.kind === 'pwdw' ? c.m! : c.c };
    const mid = epilogue(conv2d(L.x, L.w1, L.b1, c.kind === 'dwpw' ? dw : {}), c.act1 ?? '', c.params1);
    const y = epilogue(conv2d(mid, L.w2, L.b2, c.kind === 'pwdw' ? dw : {}), c.act2 ?? '', c.params2, L.res);
    const p = withStorage(built.program, 'f16');
    const got = await runHalfProgram(p, built.inputs, y.data.length);
    assertHalfClose(got, y.data, describeCase(c));
  });
}

// The plain f16 pointwise (the fp32 vec4 kernel with f16 storage) at 8 and 16 filters per thread: each x load is
// converted to f32 once and feeds RF filters; the sums stay f32, only the output is rounded.
test('f16 pointwise vec4 at 8 and 16 filters per thread: within f16 rounding of the f32 reference', async () => {
  const { dotVec4 } = await import('../../kernels/pointwise.js');
  const { activationFn } = await import('../../kernels/shader.js');
  const device = await getDevice();
  const L = { n: 2, c: 24, h: 4, w: 8, f: 48 };
  const P = L.h * L.w;
  const x = rnd([L.n, L.c, L.h, L.w]), wt = rnd([L.f, L.c, 1, 1]), b = rnd([L.f]);
  const y = epilogue(conv2d(x as Tensor4, wt as Tensor4, b.data, {}), 'Relu');
  const geom = { N: L.n, C: L.c, F: L.f, P, hasBias: true, hasRes: false, act: { fn: activationFn('act', 'Relu', [], 'test'), key: 'Relu' } };
  for (const rf of [8, 16]) {
    const p = withStorage(dotVec4(geom, rf, 32, ['x', 'w', 'b'], [0, 1, 2], limitsOf(device), 'test', 'Conv(pw)', 'pointwise'), 'f16');
    assertHalfClose(await runHalfProgram(p, [x.data, wt.data, b.data], y.data.length), y.data, `rf ${rf}`);
  }
});

test('the float32 feed conversion: pairs of elements rounded to f16, an odd count\'s last one alone, every element written', async () => {
  const device = await getDevice();
  for (const n of [1, 2, 5, 1027]) {
    // Values away from 0 (an element never written reads 0 or NaN), some on f16's rounding midpoints.
    const v = Float32Array.from({ length: n }, (_, i) => (i % 3 === 0 ? 1 + (2 * (i % 7) + 1) * 2 ** -11 : (i % 2 ? -1 : 1) * (0.25 + ((i * 0.618) % 1) * 100)));
    const p = halfFeedProgram(n, limitsOf(device), 'x');
    const got = new Uint16Array((await runProgram(device, p, [v], Math.ceil(n / 2))).buffer, 0, n);
    assert.deepEqual([...got], [...toHalf(v)], `n ${n}`);
  }
});
