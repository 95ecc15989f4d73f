// TFLite_Detection_PostProcess on the host (src/runtime/detection-postprocess.ts, host steps of the float executor)
// against a brute-force reading of its definition (TFLite's detection_postprocess.cc), written here independently:
// boxes decoded in float64, NMS as "a candidate is kept when no kept box of higher score overlaps it by more than
// the IoU threshold", regular NMS as all per-class survivors ranked by score. Seeded data: scores are distinct, so
// the order is defined, and no IoU falls within float32 rounding of the threshold (checked: the reference counts
// such near ties and the test requires none).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mulberry32 } from '../../fixtures/rng.js';
import { ssdPostProcess, type SsdOptions } from '../../fixtures/tflite-ssd.js';
import { type DetectionParams, detectionPostProcess } from '../../src/runtime/detection-postprocess.js';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';
import { FcmError } from '../../src/errors.js';
import { runCheck } from '../../src/check/check.js';

after(releaseGpu);

/** `suppressed`: candidates NMS dropped for overlap (so a case shows it exercises suppression). */
interface Expected { boxes: number[]; classes: number[]; scores: number[]; count: number; nearTies: number; suppressed: number }

/** The op by its definition, in float64. */
function reference(p: DetectionParams, boxes: ArrayLike<number>, scores: ArrayLike<number>, anchors: ArrayLike<number>, n: number, C: number): Expected {
  const dec: number[][] = [];
  for (let i = 0; i < n; i++) {
    const [y, x, h, w] = [0, 1, 2, 3].map((k) => boxes[i * 4 + k]);
    const [ay, ax, ah, aw] = [0, 1, 2, 3].map((k) => anchors[i * 4 + k]);
    const yc = y / p.yScale * ah + ay, xc = x / p.xScale * aw + ax;
    const hh = Math.exp(h / p.hScale) * ah / 2, hw = Math.exp(w / p.wScale) * aw / 2;
    dec.push([yc - hh, xc - hw, yc + hh, xc + hw]);
  }
  let nearTies = 0, suppressed = 0;
  const overlap = (a: number, b: number) => {
    const [A, B] = [dec[a], dec[b]];
    const area = (q: number[]) => (q[2] - q[0]) * (q[3] - q[1]);
    if (area(A) <= 0 || area(B) <= 0) return 0;
    const ih = Math.max(0, Math.min(A[2], B[2]) - Math.max(A[0], B[0])), iw = Math.max(0, Math.min(A[3], B[3]) - Math.max(A[1], B[1]));
    const v = ih * iw / (area(A) + area(B) - ih * iw);
    if (Math.abs(v - p.nmsIouThreshold) < 1e-5) nearTies++;
    return v;
  };
  const nms = (score: (i: number) => number, limit: number): number[] => {
    const cand = [...Array(n).keys()].filter((i) => score(i) >= p.nmsScoreThreshold).sort((a, b) => score(b) - score(a));
    const kept: number[] = [];
    for (const c of cand) {
      if (kept.length >= limit) break;
      if (kept.every((k) => overlap(k, c) <= p.nmsIouThreshold)) kept.push(c);
      else suppressed++;
    }
    return kept;
  };
  const offset = C - p.numClasses;
  const s = (anchor: number, cls: number) => scores[anchor * C + cls + offset];
  const m = p.maxDetections * p.maxClassesPerDetection;
  const out: Expected = { boxes: new Array(4 * m).fill(0), classes: new Array(m).fill(0), scores: new Array(m).fill(0), count: 0, nearTies: 0, suppressed: 0 };
  const put = (k: number, a: number, c: number) => { out.boxes.splice(4 * k, 4, ...dec[a]); out.classes[k] = c; out.scores[k] = s(a, c); };
  if (p.useRegularNms) {
    const all: { a: number; c: number }[] = [];
    for (let c = 0; c < p.numClasses; c++) for (const a of nms((i) => s(i, c), p.detectionsPerClass)) all.push({ a, c });
    all.sort((u, v) => s(v.a, v.c) - s(u.a, u.c));
    const top = all.slice(0, p.maxDetections);
    top.forEach((d, k) => put(k, d.a, d.c));
    out.count = top.length;
  } else {
    const classesBy = (a: number) => [...Array(p.numClasses).keys()].sort((u, v) => s(a, v) - s(a, u));
    const kept = nms((i) => s(i, classesBy(i)[0]), p.maxDetections);
    kept.forEach((a, k) => classesBy(a).slice(0, Math.min(p.maxClassesPerDetection, p.numClasses)).forEach((c, j) => put(k * p.maxClassesPerDetection + j, a, c)));
    out.count = kept.length;
  }
  out.nearTies = nearTies;
  out.suppressed = suppressed;
  return out;
}

function assertMatches(got: { boxes: ArrayLike<number>; classes: ArrayLike<number>; scores: ArrayLike<number>; count: number }, want: Expected, what: string) {
  assert.equal(want.nearTies, 0, `${what}: the seeded data has an IoU within 1e-5 of the threshold; pick another seed`);
  assert.equal(got.count, want.count, `${what}: number of detections`);
  assert.deepEqual(Array.from(got.classes), want.classes, `${what}: classes`);
  // Scores are copied, not computed: exactly the input's float32 values.
  assert.deepEqual(Array.from(got.scores), want.scores.map(Math.fround), `${what}: scores`);
  // Box corners: float32 decoding against float64, a few ulp of values within [-2, 3].
  for (let i = 0; i < want.boxes.length; i++) assert.ok(Math.abs(got.boxes[i] - want.boxes[i]) <= 1e-6, `${what}: box value ${i}: ${got.boxes[i]} vs ${want.boxes[i]}`);
}

const base: DetectionParams = {
  maxDetections: 30, maxClassesPerDetection: 1, detectionsPerClass: 8, useRegularNms: false, nmsScoreThreshold: Math.fround(0.3),
  nmsIouThreshold: Math.fround(0.45), numClasses: 3, yScale: 10, xScale: 10, hScale: 5, wScale: 5,
};

describe('detectionPostProcess against its definition', () => {
  // 150 anchors on a 10x15 grid with jittered sizes, box encodings and scores in [0, 1) from a seeded generator.
  const n = 150;
  const r = mulberry32(5);
  const anchors = Array.from({ length: n }, (_, i) => [(Math.floor(i / 15) + 0.5) / 10, (i % 15 + 0.5) / 15, 0.3 + 0.3 * r(), 0.2 + 0.3 * r()]).flat();
  const boxes = Array.from({ length: 4 * n }, () => (r() - 0.5) * 4);
  const cases: [string, Partial<DetectionParams>, number][] = [
    ['fast NMS, one class per detection, background class', {}, 4],
    ['fast NMS, two classes per detection', { maxClassesPerDetection: 2 }, 4],
    ['fast NMS, more classes per detection than classes, no background', { maxClassesPerDetection: 4, numClasses: 3 }, 3],
    ['regular NMS, background class', { useRegularNms: true }, 4],
    ['regular NMS, no background, low IoU threshold', { useRegularNms: true, nmsIouThreshold: Math.fround(0.2), detectionsPerClass: 100 }, 3],
    ['fast NMS, score threshold above every score', { nmsScoreThreshold: 2 }, 4],
  ];
  for (const [what, over, C] of cases) {
    it(what, () => {
      const p = { ...base, ...over };
      const scores = Float32Array.from({ length: n * C }, () => r());
      const got = detectionPostProcess(p, Float32Array.from(boxes), scores, Float32Array.from(anchors), n, 4, C);
      const want = reference(p, Float32Array.from(boxes), scores, Float32Array.from(anchors), n, C);
      if (p.nmsScoreThreshold <= 1) {
        assert.ok(want.count > 1, `${what}: the case detects something (${want.count})`);
        assert.ok(want.suppressed > 0, `${what}: NMS drops some overlapping box`);
      }
      else assert.equal(want.count, 0);
      assertMatches(got, want, what);
    });
  }
});

describe('TFLite_Detection_PostProcess in a session (host step after the GPU heads)', () => {
  const params = (o: SsdOptions): DetectionParams => ({
    ...base, maxDetections: o.maxDetections ?? 10, maxClassesPerDetection: o.maxClassesPerDetection ?? 1, detectionsPerClass: o.detectionsPerClass ?? 100,
    useRegularNms: o.useRegularNms ?? false, nmsScoreThreshold: Math.fround(o.scoreThreshold ?? 0), nmsIouThreshold: Math.fround(o.iouThreshold ?? 0.5),
    numClasses: o.numClasses ?? 2, yScale: 10, xScale: 10, hScale: 5, wScale: 5,
  });
  const anchors = Array.from({ length: 64 }, (_, i) => [(Math.floor(i / 8) + 0.5) / 8, (i % 8 + 0.5) / 8, 0.25, 0.25]).flat();
  for (const [what, o] of [
    ['fast NMS', { maxDetections: 10, iouThreshold: 0.3 }],
    ['regular NMS, two classes per detection in the shapes', { useRegularNms: true, maxDetections: 6, maxClassesPerDetection: 2, detectionsPerClass: 4, iouThreshold: 0.3 }],
  ] as [string, SsdOptions][]) {
    it(`${what}: the outputs follow from the heads the GPU computed`, async () => {
      const g = await loadModel(ssdPostProcess(31, o), { source: 'ssd.tflite' });
      for (const plan of ['unfused', 'auto'] as const) {
        const s = await createSession(g, { plan, extraOutputs: ['raw_boxes', 'raw_scores'] });
        try {
          assert.deepEqual(s.stats().hostNodes.length, 1, 'one host node');
          const x = seededInput(192, 3);
          const out = await s.run({ x: x.map((v) => v * 4) });
          const C = (o.numClasses ?? 2) + 1;
          const want = reference(params(o), out.raw_boxes.data, out.raw_scores.data, anchors, 64, C);
          assert.ok(want.count > 1 && want.suppressed > 0, `${what}: the fixture detects something (${want.count}) and NMS drops some overlapping box (${want.suppressed})`);
          assertMatches({ boxes: out.detection_boxes.data, classes: out.detection_classes.data, scores: out.detection_scores.data, count: out.num_detections.data[0] }, want, `${what} (${plan})`);
          const m = (o.maxDetections ?? 10) * (o.maxClassesPerDetection ?? 1);
          assert.deepEqual(out.detection_boxes.shape, [1, m, 4]);
          assert.deepEqual(out.num_detections.shape, [1]);
          // Host-made outputs: into the caller's arrays when given; never as GPU buffers.
          const into = { num_detections: new Float32Array(1), detection_scores: new Float32Array(m) };
          const again = await s.run({ x: x.map((v) => v * 4) }, { outputArrays: into });
          assert.equal(again.num_detections.data, into.num_detections);
          assert.equal(into.num_detections[0], want.count);
          assert.deepEqual(Array.from(into.detection_scores), Array.from(out.detection_scores.data));
          await assert.rejects(s.run({ x }, { outputLocation: 'gpu' }), (e: unknown) => e instanceof FcmError && e.exitCode === 3 && /computed on the host/.test(e.message));
        } finally {
          s.dispose();
        }
      }
    });
  }

  it('check compares up to the op\'s inputs (onnxruntime has no equivalent) and says so', async () => {
    const r = await runCheck(ssdPostProcess(31, { iouThreshold: 0.3 }), { unfused: true }, 'ssd.tflite');
    assert.deepEqual(r.outputs.map((o) => o.name), ['raw_boxes', 'raw_scores']);
    assert.deepEqual(r.notCompared?.map((c) => c.op), ['tflite_detection_postprocess']);
    assert.ok(r.ok, JSON.stringify(r.outputs));
  });

  it('an op without its custom options is refused naming the node (exit 2)', async () => {
    const g = await loadModel(ssdPostProcess(31, { noOptions: true }), { source: 'ssd.tflite' });
    await assert.rejects(createSession(g, { plan: 'unfused' }),
      (e: unknown) => e instanceof FcmError && e.exitCode === 2 && /tflite_detection_postprocess/.test(e.message) && /max_detections/.test(e.message));
  });
});
