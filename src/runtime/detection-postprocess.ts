// TFLite_Detection_PostProcess (the SSD post-processing custom op of TensorFlow's object detection exports), run on
// the host: box decoding against the anchors, then non-max suppression, as TFLite's kernel defines it
// (tensorflow/lite/kernels/detection_postprocess.cc):
// - decode: (y, x, h, w) encodings with anchors (ay, ax, ah, aw): yc = y / y_scale * ah + ay, xc = x / x_scale * aw
//   + ax, half_h = 0.5 * exp(h / h_scale) * ah, half_w = 0.5 * exp(w / w_scale) * aw (in double, stored as float);
//   box = (yc - half_h, xc - half_w, yc + half_h, xc + half_w).
// - one class's NMS: scores >= nms_score_threshold, in decreasing order (stable), greedily kept unless their IoU with
//   a kept box is over nms_iou_threshold, at most a given count.
// - regular NMS (use_regular_nms): that per class (detections_per_class each), merged, the best max_detections.
// - fast NMS (default): per anchor its best class score, NMS on those (max_detections), then per kept anchor its
//   max_classes_per_detection best classes.
// Scores of [1, N, C] may carry a background class first (C = num_classes + 1): it is skipped. Outputs: boxes
// [1, M, 4], classes [1, M], scores [1, M] (M = max_detections * max_classes_per_detection) and the count [1];
// entries past the detections are zeros (TFLite leaves them as they were). Where scores tie, TFLite's
// std::partial_sort leaves the order open; here ties keep the lower index.
import { invalid } from '../errors.js';
import type { Graph, Node } from '../graph/ir.js';
import { nodeWhere } from '../graph/util.js';

export const detectionPostProcessOp = 'tflite_detection_postprocess';

export interface DetectionParams {
  maxDetections: number;
  maxClassesPerDetection: number;
  detectionsPerClass: number;
  useRegularNms: boolean;
  nmsScoreThreshold: number;
  nmsIouThreshold: number;
  numClasses: number;
  yScale: number;
  xScale: number;
  hScale: number;
  wScale: number;
}

export interface Detections { boxes: Float32Array; classes: Float32Array; scores: Float32Array; count: number }

const f = Math.fround;

/** The op's parameters from its attributes (set by the TFLite importer from the custom options), checked as TFLite's kernel checks them. */
export function detectionParams(g: Graph, n: Node): DetectionParams {
  const where = nodeWhere(g, n);
  const num = (k: string): number => {
    const v = n.attrs[k];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(where, `has no custom option '${k}' (TFLite_Detection_PostProcess needs its flexbuffer options)`);
    return v;
  };
  const p: DetectionParams = {
    maxDetections: num('max_detections'), maxClassesPerDetection: num('max_classes_per_detection'),
    detectionsPerClass: num('detections_per_class'), useRegularNms: num('use_regular_nms') !== 0,
    nmsScoreThreshold: f(num('nms_score_threshold')), nmsIouThreshold: f(num('nms_iou_threshold')), numClasses: num('num_classes'),
    yScale: f(num('y_scale')), xScale: f(num('x_scale')), hScale: f(num('h_scale')), wScale: f(num('w_scale')),
  };
  for (const k of ['maxDetections', 'maxClassesPerDetection', 'detectionsPerClass', 'numClasses'] as const) {
    if (!Number.isInteger(p[k]) || p[k] < 0) throw invalid(where, `${k} is ${p[k]}, not a whole number >= 0`);
  }
  if (!(p.nmsIouThreshold > 0 && p.nmsIouThreshold <= 1)) throw invalid(where, `nms_iou_threshold ${p.nmsIouThreshold} is not in (0, 1]`);
  if (p.numClasses < 1) throw invalid(where, 'num_classes must be at least 1');
  if (p.maxClassesPerDetection < 1) throw invalid(where, 'max_classes_per_detection must be at least 1');
  if (p.useRegularNms && p.detectionsPerClass < 1) throw invalid(where, 'detections_per_class must be at least 1');
  return p;
}

/** Checks the op's input and output shapes against its parameters (TFLite's Prepare and Eval checks). */
export function checkDetectionShapes(where: string, p: DetectionParams, ins: number[][], outs: number[][]): { numBoxes: number; boxSize: number; classesWithBackground: number } {
  const [b, s, a] = ins;
  if (ins.length !== 3 || outs.length !== 4) throw invalid(where, `takes 3 inputs and 4 outputs, has ${ins.length} and ${outs.length}`);
  if (b.length !== 3 || b[0] !== 1 || b[2] < 4) throw invalid(where, `box encodings have shape [${b}], not [1, N, >= 4]`);
  const n = b[1];
  if (s.length !== 3 || s[0] !== 1 || s[1] !== n) throw invalid(where, `class predictions have shape [${s}], not [1, ${n}, C]`);
  if (a.length !== 2 || a[0] !== n || a[1] !== 4) throw invalid(where, `anchors have shape [${a}], not [${n}, 4]`);
  const c = s[2];
  if (c - p.numClasses > 1 || c < p.numClasses) throw invalid(where, `${c} class predictions for num_classes ${p.numClasses} (at most one background class)`);
  const m = p.maxDetections * p.maxClassesPerDetection;
  const want = [[1, m, 4], [1, m], [1, m], [1]];
  outs.forEach((o, i) => {
    if (o.join() !== want[i].join()) throw invalid(where, `output ${i} has shape [${o}], the options give [${want[i]}]`);
  });
  return { numBoxes: n, boxSize: b[2], classesWithBackground: c };
}

/** Decoded corner boxes (ymin, xmin, ymax, xmax) per anchor. */
export function decodeBoxes(p: DetectionParams, boxes: ArrayLike<number>, anchors: ArrayLike<number>, numBoxes: number, boxSize: number): Float32Array {
  const out = new Float32Array(numBoxes * 4);
  for (let i = 0; i < numBoxes; i++) {
    const [y, x, h, w] = [0, 1, 2, 3].map((k) => f(boxes[i * boxSize + k]));
    const [ay, ax, ah, aw] = [0, 1, 2, 3].map((k) => f(anchors[i * 4 + k]));
    const yc = f(y / p.yScale * ah + ay);
    const xc = f(x / p.xScale * aw + ax);
    const hh = f(0.5 * Math.exp(h / p.hScale) * ah);
    const hw = f(0.5 * Math.exp(w / p.wScale) * aw);
    out[i * 4] = yc - hh; out[i * 4 + 1] = xc - hw; out[i * 4 + 2] = yc + hh; out[i * 4 + 3] = xc + hw;
  }
  return out;
}

/** IoU of decoded boxes i and j in float32 (0 where either has no area). */
export function iou(d: Float32Array, i: number, j: number): number {
  const areaI = f(f(d[i * 4 + 2] - d[i * 4]) * f(d[i * 4 + 3] - d[i * 4 + 1]));
  const areaJ = f(f(d[j * 4 + 2] - d[j * 4]) * f(d[j * 4 + 3] - d[j * 4 + 1]));
  if (areaI <= 0 || areaJ <= 0) return 0;
  const ymin = Math.max(d[i * 4], d[j * 4]), xmin = Math.max(d[i * 4 + 1], d[j * 4 + 1]);
  const ymax = Math.min(d[i * 4 + 2], d[j * 4 + 2]), xmax = Math.min(d[i * 4 + 3], d[j * 4 + 3]);
  const inter = f(Math.max(f(ymax - ymin), 0) * Math.max(f(xmax - xmin), 0));
  return f(inter / f(f(areaI + areaJ) - inter));
}

/** Greedy NMS of one score per box: the kept box indices, best first. */
function nmsSingle(p: DetectionParams, d: Float32Array, scores: ArrayLike<number>, maxDetections: number): number[] {
  const keep: number[] = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] >= p.nmsScoreThreshold) keep.push(i);
  keep.sort((a, b) => scores[b] - scores[a] || a - b);
  const limit = Math.min(keep.length, maxDetections);
  const active = new Uint8Array(keep.length).fill(1);
  const selected: number[] = [];
  for (let i = 0; i < keep.length && selected.length < limit; i++) {
    if (!active[i]) continue;
    selected.push(keep[i]);
    for (let j = i + 1; j < keep.length; j++) if (active[j] && iou(d, keep[i], keep[j]) > p.nmsIouThreshold) active[j] = 0;
  }
  return selected;
}

/** Indices of `values` by decreasing value, ties by lower index. */
const decreasing = (values: ArrayLike<number>, idx: number[]) => idx.sort((a, b) => values[b] - values[a] || a - b);

/** The op on one batch item: boxes [N, boxSize], scores [N, C], anchors [N, 4]. */
export function detectionPostProcess(
  p: DetectionParams, boxes: ArrayLike<number>, scores: ArrayLike<number>, anchors: ArrayLike<number>,
  numBoxes: number, boxSize: number, classesWithBackground: number,
): Detections {
  const d = decodeBoxes(p, boxes, anchors, numBoxes, boxSize);
  const C = classesWithBackground, offset = C - p.numClasses;
  const m = p.maxDetections * p.maxClassesPerDetection;
  const out: Detections = { boxes: new Float32Array(m * 4), classes: new Float32Array(m), scores: new Float32Array(m), count: 0 };
  const put = (k: number, anchor: number, cls: number, score: number) => {
    out.boxes.set(d.subarray(anchor * 4, anchor * 4 + 4), k * 4);
    out.classes[k] = cls;
    out.scores[k] = score;
  };
  if (p.useRegularNms) {
    // Per class, then the best max_detections of all (anchor, class) pairs kept.
    let kept: { anchor: number; cls: number; score: number }[] = [];
    const classScores = new Float32Array(numBoxes);
    for (let c = 0; c < p.numClasses; c++) {
      for (let r = 0; r < numBoxes; r++) classScores[r] = scores[r * C + c + offset];
      for (const a of nmsSingle(p, d, classScores, p.detectionsPerClass)) kept.push({ anchor: a, cls: c, score: classScores[a] });
      // TFLite keeps the running best max_detections after each class (the same set as sorting once at the end).
      kept = decreasing(kept.map((k) => k.score), kept.map((_, i) => i)).slice(0, Math.min(kept.length, p.maxDetections)).map((i) => kept[i]);
    }
    kept.forEach((k, i) => put(i, k.anchor, k.cls, k.score));
    out.count = kept.length;
    return out;
  }
  const perAnchor = Math.min(p.maxClassesPerDetection, p.numClasses);
  const best = new Float32Array(numBoxes);
  const order: number[][] = [];
  for (let r = 0; r < numBoxes; r++) {
    const row = Array.from({ length: p.numClasses }, (_, c) => scores[r * C + c + offset]);
    order.push(decreasing(row, row.map((_, c) => c)).slice(0, perAnchor));
    best[r] = row[order[r][0]];
  }
  const selected = nmsSingle(p, d, best, p.maxDetections);
  selected.forEach((a, k) => {
    for (let j = 0; j < perAnchor; j++) {
      const c = order[a][j];
      put(p.maxClassesPerDetection * k + j, a, c, scores[a * C + c + offset]);
    }
  });
  out.count = selected.length;
  return out;
}
