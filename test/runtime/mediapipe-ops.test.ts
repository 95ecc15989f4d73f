// MediaPipe's landmark ops on the host (src/runtime/mediapipe-ops.ts: float32, MediaPipe's C++ order of operations)
// against the float64 transcription of their definitions that `check` uses (src/check/mediapipe-reference.ts, closed
// forms written apart from the port) and against cases worked out by hand, which pin both to the definition. The
// seeded cases are built so that a mutation of either side shows: non-square data and crops, distinct x and y scales,
// a non-zero target rotation, an odd subset whose repeated last landmark is the box's extreme, samples off the pixel
// grid (a wrong bilinear corner or a missing half-pixel shift moves them), landmarks with z.
// Tolerances: float32 against float64 on values of magnitude up to about 50 (pixel coordinates): a few float32 steps
// of 2^-24 relative through about twenty operations (atan2, cos, sin, 4x4 products), so 1e-5 relative.
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { builder as flexBuilder, toObject as flexToObject } from 'flatbuffers/mjs/flexbuffers.js';
import { mulberry32 } from '../../fixtures/rng.js';
import { mediapipeCropOptions, mediapipeLandmarkModel } from '../../fixtures/tflite-mediapipe.js';
import {
  type LandmarksToTransformMatrixParams, landmarksToTransformMatrix, landmarksToTransformMatrixParams, transformLandmarks, transformTensorBilinear,
} from '../../src/runtime/mediapipe-ops.js';
import { landmarksToMatrix64, transformBilinear64, transformLandmarks64 } from '../../src/check/mediapipe-reference.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { runCheck } from '../../src/check/check.js';
import { FcmError } from '../../src/errors.js';
import { type Graph, newAttrs } from '../../src/graph/ir.js';

after(releaseGpu);

const close = (ours: ArrayLike<number>, ref: ArrayLike<number>, rel: number, what: string) => {
  assert.equal(ours.length, ref.length, `${what}: length`);
  for (let i = 0; i < ref.length; i++) {
    const tol = rel * Math.max(1, Math.abs(ref[i]));
    assert.ok(Math.abs(ours[i] - ref[i]) <= tol, `${what}[${i}]: ${ours[i]} vs ${ref[i]} (tolerance ${tol})`);
  }
};

/** The executor's parameters from the options as the importer stores them (node attributes). */
const params = (o: typeof mediapipeCropOptions): LandmarksToTransformMatrixParams => landmarksToTransformMatrixParams(
  { source: 'test' } as Graph,
  { name: 'l2t', op: 'landmarks2transformmatrix', domain: 'tflite.custom', inputs: [], outputs: [], attrs: newAttrs({ ...o, version: 2 }) },
);
const options64 = (o: typeof mediapipeCropOptions) => ({
  subset: o.subset_idxs, left: o.left_rotation_idx, right: o.right_rotation_idx, target: Math.fround(o.target_rotation_radians),
  width: o.output_width, height: o.output_height, scaleX: o.scale_x, scaleY: o.scale_y,
});

describe('Landmarks2TransformMatrix', () => {
  it('turns a box of landmarks into the crop matrix worked out by hand', () => {
    // Left (0, 0), right (0, 10): the eye line points down, r = -pi/2. The subset (0, 0), (0, 10), (4, 5) spans
    // x 0..4, y 0..10: along the line 10, across it 4; centre (2, 5). Crop 16 x 16, scale 1.5: a crop pixel step is
    // 1.5 * 10 / 16 = 0.9375 along the line (+y) and 1.5 * 4 / 16 = 0.375 across it (-x), the crop's centre (8, 8)
    // at (2, 5): x = 5 - 0.375 j, y = 0.9375 i - 2.5.
    const lm = [0, 0, 0, 0, 10, 0, 4, 5, 0];
    const o = { subset_idxs: [0, 1, 2], left_rotation_idx: 0, right_rotation_idx: 1, target_rotation_radians: 0, output_height: 16, output_width: 16, scale_x: 1.5, scale_y: 1.5 };
    const want = [0, -0.375, 0, 5, 0.9375, 0, 0, -2.5, 0, 0, 1, 0, 0, 0, 0, 1];
    close(landmarksToMatrix64(options64(o), lm), want, 1e-12, 'float64');
    close(landmarksToTransformMatrix(params(o), lm), want, 1e-6, 'float32');
  });

  it('agrees with the float64 transcription on seeded landmarks (odd subset, target rotation, unequal scales)', () => {
    const r = mulberry32(3);
    for (let trial = 0; trial < 20; trial++) {
      const lm = Array.from({ length: 64 * 3 }, () => 8 + 40 * r());
      // The subset's last landmark (repeated as a pair of itself) is the farthest out: dropping it changes the box.
      const last = mediapipeCropOptions.subset_idxs.at(-1)!;
      lm[3 * last] = 60 + 10 * r(); lm[3 * last + 1] = 60 + 10 * r();
      const o = { ...mediapipeCropOptions, target_rotation_radians: 2 * r() - 1 };
      close(landmarksToTransformMatrix(params(o), lm), landmarksToMatrix64(options64(o), lm), 1e-5, `trial ${trial}`);
    }
  });
});

describe('TransformTensorBilinear', () => {
  it('samples pixel centres: an identity matrix copies the data, a scale by 2 with shift blends as worked out by hand', () => {
    const [h, w, c] = [3, 4, 2];
    const data = Array.from({ length: h * w * c }, (_, i) => i * i % 7 - 3);
    const id = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1];
    // 4 x 5 output: row 3 and column 4 fall past the data (Y > 2, X > 3): zero.
    const copy = transformTensorBilinear({ outputHeight: 4, outputWidth: 5 }, data, h, w, c, id);
    const want = new Float64Array(4 * 5 * c);
    for (let i = 0; i < h; i++) for (let j = 0; j < w; j++) for (let z = 0; z < c; z++) want[(i * 5 + j) * c + z] = data[(i * w + j) * c + z];
    close(copy, want, 0, 'identity float32');
    close(transformBilinear64(data, h, w, c, id, 4, 5), want, 0, 'identity float64');
    // X = 0.5 (j + 1/2) + 0.25 - 1/2 = 0.5 j, Y = (i + 1/2) + 0.5 - 1/2 = i + 0.5: output (0, 1) reads X 0.5, Y 0.5,
    // the mean of pixels (0, 0), (0, 1), (1, 0), (1, 1).
    const m = [0.5, 0, 0, 0.25, 0, 1, 0, 0.5, 0, 0, 1, 0, 0, 0, 0, 1];
    const at = (i: number, j: number, z: number) => data[(i * w + j) * c + z];
    const mean = (at(0, 0, 1) + at(0, 1, 1) + at(1, 0, 1) + at(1, 1, 1)) / 4;
    assert.equal(transformTensorBilinear({ outputHeight: 2, outputWidth: 3 }, data, h, w, c, m)[(0 * 3 + 1) * c + 1], Math.fround(mean));
    assert.equal(transformBilinear64(data, h, w, c, m, 2, 3)[(0 * 3 + 1) * c + 1], mean);
  });

  it('agrees with the float64 transcription on seeded data and rotated, scaled matrices', () => {
    const r = mulberry32(5);
    const [h, w, c, oh, ow] = [7, 9, 3, 5, 6];
    let inside = 0, outside = 0, compared = 0;
    for (let trial = 0; trial < 20; trial++) {
      const data = Array.from({ length: h * w * c }, () => 2 * r() - 1);
      const a = 2 * Math.PI * r(), sx = 0.5 + r(), sy = 0.5 + r();
      // Turned by a, scaled, the crop's centre near the data's: most samples inside, the crop's corners often outside.
      const [m0, m1, m4, m5] = [sx * Math.cos(a), -sy * Math.sin(a), sx * Math.sin(a), sy * Math.cos(a)];
      const tx = w / 2 - (m0 * ow + m1 * oh) / 2 + r() - 0.5, ty = h / 2 - (m4 * ow + m5 * oh) / 2 + r() - 0.5;
      const m = [m0, m1, 0, tx, m4, m5, 0, ty, 0, 0, 1, 0, 0, 0, 0, 1].map(Math.fround);
      // A trial with a sample within float32 reach of the data's border (in and out of bounds could differ) is left out.
      let onBorder = false, inTrial = 0;
      for (let i = 0; i < oh; i++) {
        for (let j = 0; j < ow; j++) {
          const X = m[0] * (j + 0.5) + m[1] * (i + 0.5) + m[3] - 0.5, Y = m[4] * (j + 0.5) + m[5] * (i + 0.5) + m[7] - 0.5;
          for (const [v, hi] of [[X, w - 1], [Y, h - 1]]) if (Math.abs(v) < 1e-4 || Math.abs(v - hi) < 1e-4) onBorder = true;
          if (X >= 0 && X <= w - 1 && Y >= 0 && Y <= h - 1) inTrial++;
        }
      }
      if (onBorder) continue;
      compared++;
      inside += inTrial;
      outside += oh * ow - inTrial;
      close(transformTensorBilinear({ outputHeight: oh, outputWidth: ow }, data, h, w, c, m), transformBilinear64(data, h, w, c, m, oh, ow), 1e-5, `trial ${trial}`);
    }
    assert.ok(compared >= 15 && inside > 300 && outside > 30, `${compared} trials, samples inside ${inside}, outside ${outside}: both cases exercised`);
  });
});

describe('TransformLandmarks', () => {
  it('maps (x, y) by the matrix rows 0 and 1 and keeps z (worked out by hand)', () => {
    const m = [0, 2, 0, 1, 3, 0, 0, -1, 0, 0, 1, 0, 0, 0, 0, 1];
    close(transformLandmarks([1, 2, 7, -1, 0.5, 9], 2, 3, m), [5, 2, 7, 2, -4, 9], 0, 'float32');
    close(transformLandmarks64([1, 2, 7, -1, 0.5, 9], 2, 3, m), [5, 2, 7, 2, -4, 9], 0, 'float64');
  });

  it('agrees with the float64 transcription on seeded points, 2 and 3 values each', () => {
    const r = mulberry32(7);
    for (const dims of [2, 3]) {
      const pts = Array.from({ length: 30 * dims }, () => 20 * r() - 10);
      const m = Array.from({ length: 16 }, () => Math.fround(4 * r() - 2));
      close(transformLandmarks(pts, 30, dims, m), transformLandmarks64(pts, 30, dims, m), 1e-5, `dims ${dims}`);
    }
  });
});

describe('MediaPipe landmark ops in a TFLite model', () => {
  it('imports their options and version, runs them as host steps, and check compares the outputs after them', async () => {
    const bytes = mediapipeLandmarkModel();
    const g = await loadModel(bytes);
    const l2t = g.nodes.find((n) => n.op === 'landmarks2transformmatrix')!;
    assert.equal(l2t.attrs.version, 2);
    assert.deepEqual(l2t.attrs.subset_idxs, mediapipeCropOptions.subset_idxs);
    assert.equal(l2t.attrs.scale_y, 1.25);
    const s = await createSession(g, { plan: 'unfused' });
    try {
      assert.deepEqual(s.stats().hostNodes.map((n) => n.replace(/_\d+$/, '')).sort(), ['landmarks2transformmatrix', 'transformlandmarks', 'transformtensorbilinear']);
    } finally {
      s.dispose();
    }
    const report = await runCheck(bytes);
    assert.deepEqual(report.outputs.map((o) => o.name).sort(), ['crop', 'points'].sort());
    assert.equal(report.float64Nodes?.length, 3);
    assert.ok(report.ok, JSON.stringify(report.outputs));
    // The crop is not all zeros (the landmarks fall on the features), so the comparison says something.
    const crop = report.outputs.find((o) => o.name === 'crop')!;
    assert.ok(crop.cosine > 0.999);
    // --per-layer across the stages, the matrix (a host node's output) among the tensors compared.
    const layered = await runCheck(bytes, { perLayer: true });
    assert.ok(layered.layers!.some((l) => l.op === 'landmarks2transformmatrix' && l.ok), JSON.stringify(layered.layers!.map((l) => l.op)));
    // The 1x1 conv after the host nodes stores its output channels-last (src/rewrite/channels-last-store.ts folds the
    // import's Transpose to NHWC into it): its tensor is the Transpose's.
    assert.ok(layered.layers!.some((l) => l.node.startsWith('conv_2d') && l.tensor === 'crop/points/nhwc' && l.ok), 'a layer of the stage after the host nodes');
    assert.equal(layered.firstBadNode, undefined);
  });

  it('check fails when fcm-opt computes an op differently from the reference (the reference is not the executor)', async () => {
    // fcm-opt's graph only: scale_y changed on its Landmarks2TransformMatrix node.
    const change = (g: Graph): Graph => ({
      ...g, nodes: g.nodes.map((n) => (n.op === 'landmarks2transformmatrix' ? { ...n, attrs: Object.assign(Object.create(null), n.attrs, { scale_y: 1.3 }) } : n)),
    });
    const report = await runCheck(mediapipeLandmarkModel(), { transformGraph: change });
    assert.equal(report.ok, false);
  });

  it('reads a float option of 0.0 (flatbuffers\' toObject gives null for it) as MediaPipe\'s files store it', async () => {
    // The options map as MediaPipe's exporter writes it: target_rotation_radians a 32-bit float 0.0.
    const fb = flexBuilder();
    fb.startMap();
    for (const [k, v] of Object.entries(mediapipeCropOptions)) {
      fb.addKey(k);
      if (k === 'target_rotation_radians') fb.addFloat(0);
      else fb.add(v);
    }
    fb.end();
    const raw = fb.finish();
    assert.equal((flexToObject(raw.slice().buffer) as Record<string, unknown>).target_rotation_radians, null, 'the library reads it as null');
    const g = await loadModel(mediapipeLandmarkModel(51, { rawOptions: raw }));
    assert.equal(g.nodes.find((n) => n.op === 'landmarks2transformmatrix')!.attrs.target_rotation_radians, 0);
  });

  it('refuses version 1 of the ops (a different definition), naming the node', async () => {
    const g = await loadModel(mediapipeLandmarkModel(51, { version: 1 }));
    await assert.rejects(createSession(g, { plan: 'unfused' }), (e: unknown) => e instanceof FcmError && e.kind === 'unsupported' && /version 1/.test(e.message));
  });

  it('refuses a landmark index past the landmarks, naming the node', async () => {
    const g = await loadModel(mediapipeLandmarkModel(51, { options: { ...mediapipeCropOptions, right_rotation_idx: 64 } }));
    await assert.rejects(createSession(g, { plan: 'unfused' }), (e: unknown) => e instanceof FcmError && e.kind === 'invalid' && /landmark index 64/.test(e.message));
  });
});
