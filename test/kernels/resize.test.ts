// kernels/resize.ts against a float64 reference of ONNX Resize (nearest and linear, every supported
// coordinate_transformation_mode and nearest_mode), on seeded inputs with odd sizes, down- and upsampling,
// a scale that differs from the size ratio, an axis resized to length 1 and three resized axes at once.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { closeDevice } from './fused-harness.js';
import { GraphBuilder } from '../../fixtures/ir-builder.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { randomF32 } from './reference.js';
import { type ResizeCase, numelOf, resizeRef } from './reference-ops.js';
import { assertClose, runLayer } from './layer-harness.js';

after(closeDevice);

type Case = ResizeCase;

const unitAxisCases: Case[] = [
  { mode: 'nearest', ctm: 'tf_half_pixel_for_nn', nearest: 'ceil', x: [1, 2, 2, 3], out: [1, 2, 2, 6] },
  { mode: 'nearest', ctm: 'tf_half_pixel_for_nn', nearest: 'round_prefer_ceil', x: [1, 2, 5, 3], out: [1, 2, 10, 3], scales: [1, 1, 2, 1] },
  { mode: 'linear', ctm: 'tf_half_pixel_for_nn', x: [1, 2, 3, 3], out: [1, 2, 6, 3] },
];

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
  // An axis of scale 1 is read one to one, also where the mode would move it (tf_half_pixel_for_nn: x + 0.5).
  ...unitAxisCases,
];

let seed = 700;

test('an axis of scale 1 is mapped one to one, as onnxruntime does (single-Resize models run by both)', async () => {
  for (const c of unitAxisCases) {
    const b = new GraphBuilder('resize_unit_axis', 5);
    const attrs: Record<string, string> = { mode: c.mode, coordinate_transformation_mode: c.ctm, ...(c.nearest ? { nearest_mode: c.nearest } : {}) };
    const x = b.input('x', c.x);
    const shape = c.scales ? b.constant('scales', [4], Float32Array.from(c.scales)) : b.int64s('sizes', c.out);
    const y = b.node('Resize', c.scales ? [x, '', shape] : [x, '', '', shape], c.out, attrs);
    const bytes = exportOnnx(b.build([y]));
    const feed = randomF32(numelOf(c.x), 77);
    const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
    const want = (await s.run({ x: new ort.Tensor('float32', feed, c.x) }))[y].data as Float32Array;
    await s.release();
    // The reference the kernel cases use agrees with onnxruntime here (nearest exactly, linear to float32 rounding)...
    assertClose(Float32Array.from(resizeRef(c, feed)), want, `reference, ${c.ctm} ${c.nearest ?? c.mode}`);
    // ... and so does the kernel.
    const [got] = await runLayer({ op: 'Resize', attrs: { ...attrs, ...(c.scales ? { scales: c.scales } : {}) }, inputs: [{ data: feed, shape: c.x }, null, c.scales ? { data: Float32Array.from(c.scales), shape: [4] } : null, c.scales ? null : { data: Float32Array.from(c.out), shape: [4] }], outputShapes: [c.out] });
    assertClose(got, want, `kernel, ${c.ctm} ${c.nearest ?? c.mode}`);
  }
});
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
  // Also where no axis is resized (a crop box would still move them).
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'nearest', coordinate_transformation_mode: 'tf_crop_and_resize' }, inputs: [x, null, null, { data: Float32Array.of(1, 1, 4, 5), shape: [4] }], outputShapes: [[1, 1, 4, 5]] }), /tf_crop_and_resize/);
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'linear' }, inputs: [x, null, { data: Float32Array.of(1, 1, 2, 2), shape: [4] }], outputShapes: [[1, 1, 8, 10]] }), /run time/);
  // Neither scales nor sizes: opset 10's form (X, scales), or a broken node.
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'nearest' }, inputs: [x, { data: Float32Array.of(1, 1, 2, 2), shape: [4] }], outputShapes: [[1, 1, 8, 10]] }), /opset-10/);
  // A scales attribute that does not give the output shape is a broken node.
  await assert.rejects(runLayer({ op: 'Resize', attrs: { mode: 'linear', scales: [1, 1, 2, 3] }, inputs: [x, null, { data: Float32Array.of(1, 1, 2, 3), shape: [4] }], outputShapes: [[1, 1, 8, 10]] }), /does not follow/);
});
