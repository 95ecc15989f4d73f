// kernels/resize.ts against a float64 reference of ONNX Resize (nearest and linear, every supported
// coordinate_transformation_mode and nearest_mode), on seeded inputs with odd sizes, down- and upsampling,
// a scale that differs from the size ratio, an axis resized to length 1 and three resized axes at once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeDevice } from './fused-harness.js';
import { randomF32 } from './reference.js';
import { numelOf, strides, unravel } from './reference-ops.js';
import { assertClose, runLayer } from './layer-harness.js';

after(closeDevice);

interface Case { mode: 'nearest' | 'linear'; ctm: string; nearest?: string; x: number[]; out: number[]; scales?: number[] }

/** The input coordinate of output index v along an axis (ONNX formulas), exact at ties for these sizes. */
function coordinate(ctm: string, v: number, inLen: number, outLen: number, scale?: number): number {
  // With sizes the scale is out/in: multiply by in and divide by out, so a tie (k + 0.5) comes out exactly.
  const div = (u: number) => (scale === undefined ? (u * inLen) / outLen : u / scale);
  switch (ctm) {
    case 'half_pixel': return div(v + 0.5) - 0.5;
    case 'pytorch_half_pixel': return outLen > 1 ? div(v + 0.5) - 0.5 : 0;
    case 'align_corners': return outLen === 1 ? 0 : (v * (inLen - 1)) / (outLen - 1);
    case 'asymmetric': return div(v);
    case 'tf_half_pixel_for_nn': return div(v + 0.5);
    default: throw new Error(ctm);
  }
}

function roundNearest(mode: string, v: number): number {
  switch (mode) {
    case 'round_prefer_floor': return v - Math.floor(v) === 0.5 ? Math.floor(v) : Math.round(v);
    case 'round_prefer_ceil': return Math.floor(v + 0.5);
    case 'floor': return Math.floor(v);
    case 'ceil': return Math.ceil(v);
    default: throw new Error(mode);
  }
}

export function resizeRef(c: Case, x: Float32Array): Float64Array {
  const out = new Float64Array(numelOf(c.out));
  const st = strides(c.x);
  const clampI = (i: number, n: number) => Math.min(Math.max(i, 0), n - 1);
  for (let i = 0; i < out.length; i++) {
    const oc = unravel(i, c.out);
    const orig = oc.map((v, k) => coordinate(c.ctm, v, c.x[k], c.out[k], c.scales?.[k]));
    if (c.mode === 'nearest') {
      const ic = orig.map((v, k) => clampI(roundNearest(c.nearest ?? 'round_prefer_floor', v), c.x[k]));
      out[i] = x[ic.reduce((s, v, k) => s + v * st[k], 0)];
      continue;
    }
    // Linear: the coordinate clamped to [0, in - 1], then the 2^rank neighbours weighted per axis.
    const lo: number[] = [], hi: number[] = [], t: number[] = [];
    orig.forEach((v, k) => {
      const cv = Math.min(Math.max(v, 0), c.x[k] - 1);
      lo.push(Math.floor(cv)); hi.push(Math.min(Math.floor(cv) + 1, c.x[k] - 1)); t.push(cv - Math.floor(cv));
    });
    let s = 0;
    for (let corner = 0; corner < 1 << c.x.length; corner++) {
      let wgt = 1, off = 0;
      for (let k = 0; k < c.x.length; k++) {
        const h = (corner >> k) & 1;
        wgt *= h ? t[k] : 1 - t[k];
        off += (h ? hi[k] : lo[k]) * st[k];
      }
      if (wgt !== 0) s += wgt * x[off];
    }
    out[i] = s;
  }
  return out;
}

const cases: Case[] = [
  { mode: 'nearest', ctm: 'asymmetric', nearest: 'floor', x: [1, 2, 5, 7], out: [1, 2, 10, 14] },
  { mode: 'nearest', ctm: 'half_pixel', nearest: 'round_prefer_floor', x: [1, 2, 5, 7], out: [1, 2, 10, 14] },
  { mode: 'nearest', ctm: 'asymmetric', nearest: 'round_prefer_floor', x: [1, 2, 5, 7], out: [1, 2, 10, 14] }, // ties x/2 = k + 0.5
  { mode: 'nearest', ctm: 'asymmetric', nearest: 'round_prefer_ceil', x: [1, 2, 5, 7], out: [1, 2, 10, 14] },
  { mode: 'nearest', ctm: 'half_pixel', nearest: 'round_prefer_ceil', x: [1, 3, 5, 4], out: [1, 3, 7, 9] },
  { mode: 'nearest', ctm: 'asymmetric', nearest: 'ceil', x: [1, 2, 6, 5], out: [1, 2, 3, 2] },
  { mode: 'nearest', ctm: 'half_pixel', nearest: 'round_prefer_floor', x: [2, 2, 4, 6], out: [2, 2, 2, 3] }, // ties at 0.5
  { mode: 'nearest', ctm: 'align_corners', nearest: 'round_prefer_ceil', x: [1, 2, 4, 5], out: [1, 2, 7, 9] },
  { mode: 'nearest', ctm: 'tf_half_pixel_for_nn', nearest: 'floor', x: [1, 2, 5, 5], out: [1, 2, 8, 3] },
  { mode: 'nearest', ctm: 'pytorch_half_pixel', nearest: 'round_prefer_floor', x: [1, 2, 5, 6], out: [1, 2, 1, 9] },
  { mode: 'nearest', ctm: 'half_pixel', nearest: 'floor', x: [1, 2, 5, 7], out: [1, 2, 2, 14], scales: [1, 1, 0.5, 2] },
  { mode: 'linear', ctm: 'half_pixel', x: [1, 3, 5, 7], out: [1, 3, 10, 14] },
  { mode: 'linear', ctm: 'half_pixel', x: [2, 3, 5, 4], out: [2, 3, 7, 9] },
  { mode: 'linear', ctm: 'asymmetric', x: [1, 2, 5, 7], out: [1, 2, 11, 3] },
  { mode: 'linear', ctm: 'align_corners', x: [1, 2, 5, 7], out: [1, 2, 9, 13] },
  { mode: 'linear', ctm: 'pytorch_half_pixel', x: [1, 2, 5, 6], out: [1, 2, 1, 11] },
  { mode: 'linear', ctm: 'half_pixel', x: [1, 2, 5, 7], out: [1, 2, 2, 14], scales: [1, 1, 0.5, 2] },
  { mode: 'linear', ctm: 'half_pixel', x: [2, 3, 4, 5], out: [2, 5, 8, 3] },
  { mode: 'linear', ctm: 'align_corners', x: [3, 5, 7], out: [3, 11, 4] },
];

let seed = 700;
for (const c of cases) {
  const label = `Resize ${c.mode} ${c.ctm}${c.nearest ? ` ${c.nearest}` : ''} [${c.x}] -> [${c.out}]${c.scales ? ` scales [${c.scales}]` : ''}`;
  test(label, async () => {
    const x = { data: randomF32(numelOf(c.x), seed++), shape: c.x };
    const attrs: Record<string, unknown> = { mode: c.mode, coordinate_transformation_mode: c.ctm };
    if (c.nearest) attrs.nearest_mode = c.nearest;
    if (c.scales) attrs.scales = c.scales;
    const scalesIn = c.scales ? { data: Float32Array.from(c.scales), shape: [c.scales.length] } : null;
    const sizesIn = c.scales ? null : { data: Float32Array.from(c.out), shape: [c.out.length] };
    const [got] = await runLayer({ op: 'Resize', attrs, inputs: [x, null, scalesIn, sizesIn], outputShapes: [c.out] });
    const ref = resizeRef(c, x.data);
    if (c.mode === 'nearest') {
      // Nearest copies input elements: exact, and an index off by one reads another (random) value.
      for (let i = 0; i < ref.length; i++) assert.equal(got[i], ref[i], `${label}: element ${i}`);
    } else {
      assertClose(got, ref, label);
    }
  });
}

test('Resize refuses cubic, tf_crop_and_resize, scales computed at run time and the opset-10 form', async () => {
  const x = { data: randomF32(20, 1), shape: [1, 1, 4, 5] };
  const sizes = { data: Float32Array.of(1, 1, 8, 10), shape: [4] };
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'cubic' }, inputs: [x, null, null, sizes], outputShapes: [[1, 1, 8, 10]] }), /mode 'cubic'/);
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'linear', coordinate_transformation_mode: 'tf_crop_and_resize' }, inputs: [x, null, null, sizes], outputShapes: [[1, 1, 8, 10]] }), /tf_crop_and_resize/);
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'linear' }, inputs: [x, null, { data: Float32Array.of(1, 1, 2, 2), shape: [4] }], outputShapes: [[1, 1, 8, 10]] }), /run time/);
  // Neither scales nor sizes: opset 10's form (X, scales), or a broken node.
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'nearest' }, inputs: [x, { data: Float32Array.of(1, 1, 2, 2), shape: [4] }], outputShapes: [[1, 1, 8, 10]] }), /opset-10/);
  // A scales attribute that does not give the output shape is a broken node.
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'linear', scales: [1, 1, 2, 3] }, inputs: [x, null, { data: Float32Array.of(1, 1, 2, 3), shape: [4] }], outputShapes: [[1, 1, 8, 10]] }), /does not follow/);
});
