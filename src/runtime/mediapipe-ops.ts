// MediaPipe's custom TFLite ops of its landmark models (face mesh with attention), run on the host as MediaPipe's CPU
// kernels define them (google/mediapipe, mediapipe/util/tflite/operations/*.cc, version 2 of each; their options
// are the flexbuffer maps TensorFlow's tflite/delegates/gpu/common/mediapipe parsers read):
// - Landmarks2TransformMatrix (landmarks [1, N, 3] -> matrix [1, 4, 4]): the rotation r = target_rotation_radians -
//   atan2(right.y - left.y, right.x - left.x) of two landmarks; the landmarks of subset_idxs (pairs; an odd count
//   repeats the last) rotated by r, their bounding box (size w, h; centre rotated back by -r: (cx, cy)); the matrix
//   T(cx, cy) R(-r) S(scale_x w / output_width, scale_y h / output_height) T(-output_width / 2, -output_height / 2),
//   row-major. It maps a crop's pixel to the landmarks' coordinates.
// - TransformTensorBilinear (data [1, H, W, C] NHWC, matrix [1, 4, 4] -> [1, output_height, output_width, C]): each
//   output pixel (x, y) reads the data at (X, Y) = rows 0 and 1 of the matrix applied to (x + 0.5, y + 0.5, 0, 1),
//   less 0.5 (MediaPipe folds this half-pixel shift into the matrix's last column), bilinearly from the four
//   neighbours (zero past the edge); zero where X is outside [0, W - 1] or Y outside [0, H - 1].
// - TransformLandmarks (landmarks [1, N, D], D = 2 or 3, matrix [1, 4, 4] -> [1, N, D]): (x, y) -> rows 0 and 1 of
//   the matrix applied to (x, y, 0, 1); z unchanged.
// The arithmetic is float32 in MediaPipe's order (Math.fround at each float operation, double where the C++ mixes in
// a double constant), so results match its kernels up to the libm's last bits.
import { invalid, unsupported } from '../errors.js';
import type { Graph, Node } from '../graph/ir.js';
import { nodeWhere } from '../graph/util.js';

export const landmarksToTransformMatrixOp = 'landmarks2transformmatrix';
export const transformTensorBilinearOp = 'transformtensorbilinear';
export const transformLandmarksOp = 'transformlandmarks';
const ops = new Set([landmarksToTransformMatrixOp, transformTensorBilinearOp, transformLandmarksOp]);

/** Whether `n` is one of the MediaPipe ops of this file. */
export const isMediapipeOp = (n: Node): boolean => n.domain === 'tflite.custom' && ops.has(n.op);

export interface LandmarksToTransformMatrixParams {
  /** Landmark index pairs (the flat subset_idxs; an odd count's last index stands for a pair of itself). */
  subset: number[];
  leftRotationIdx: number;
  rightRotationIdx: number;
  targetRotationRadians: number;
  outputHeight: number;
  outputWidth: number;
  scaleX: number;
  scaleY: number;
}

export interface TransformTensorBilinearParams { outputHeight: number; outputWidth: number }

const f = Math.fround;

/** The op version (the file's operator code version): only version 2 of each is implemented. */
function checkVersion(g: Graph, n: Node): void {
  const v = n.attrs.version;
  if (v !== 2) throw unsupported(nodeWhere(g, n), `MediaPipe op ${n.op} version ${String(v)}: only version 2 is implemented`);
}

/** A number option; a missing one is 0 as flexbuffers' AsInt32/AsFloat read a missing key in MediaPipe's parser. */
function num(g: Graph, n: Node, key: string): number {
  const v = n.attrs[key];
  if (v === undefined) return 0;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw invalid(nodeWhere(g, n), `custom option '${key}' is not a number`);
  return v;
}

const int = (g: Graph, n: Node, key: string): number => {
  const v = num(g, n, key);
  if (!Number.isInteger(v)) throw invalid(nodeWhere(g, n), `custom option '${key}' is ${v}, not a whole number`);
  return v;
};

/** Landmarks2TransformMatrix's options (version 2), checked as its Eval checks them. */
export function landmarksToTransformMatrixParams(g: Graph, n: Node): LandmarksToTransformMatrixParams {
  checkVersion(g, n);
  const where = nodeWhere(g, n);
  const s = n.attrs.subset_idxs ?? [];
  if (!Array.isArray(s) || s.some((x) => typeof x !== 'number' || !Number.isInteger(x) || x < 0)) throw invalid(where, "custom option 'subset_idxs' is not a list of landmark indices >= 0");
  if (s.length === 0) throw invalid(where, "custom option 'subset_idxs' is empty (the op needs landmarks to bound)");
  const p: LandmarksToTransformMatrixParams = {
    subset: (s as number[]).length % 2 ? [...(s as number[]), (s as number[])[s.length - 1]] : [...(s as number[])],
    leftRotationIdx: int(g, n, 'left_rotation_idx'), rightRotationIdx: int(g, n, 'right_rotation_idx'),
    targetRotationRadians: f(num(g, n, 'target_rotation_radians')),
    outputHeight: int(g, n, 'output_height'), outputWidth: int(g, n, 'output_width'),
    scaleX: f(num(g, n, 'scale_x')), scaleY: f(num(g, n, 'scale_y')),
  };
  if (p.leftRotationIdx < 0 || p.rightRotationIdx < 0) throw invalid(where, `rotation landmarks ${p.leftRotationIdx}, ${p.rightRotationIdx} must be >= 0`);
  if (p.outputHeight <= 0 || p.outputWidth <= 0) throw invalid(where, `output size ${p.outputHeight}x${p.outputWidth} must be positive`);
  if (!(p.scaleX > 0) || !(p.scaleY > 0)) throw invalid(where, `scales ${p.scaleX}, ${p.scaleY} must be positive`);
  return p;
}

/** TransformTensorBilinear's options (version 2). */
export function transformTensorBilinearParams(g: Graph, n: Node): TransformTensorBilinearParams {
  checkVersion(g, n);
  const p = { outputHeight: int(g, n, 'output_height'), outputWidth: int(g, n, 'output_width') };
  if (p.outputHeight <= 0 || p.outputWidth <= 0) throw invalid(nodeWhere(g, n), `output size ${p.outputHeight}x${p.outputWidth} must be positive`);
  return p;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const isMatrix = (s: number[] | undefined) => !!s && size(s) === 16 && s.length >= 2 && s[s.length - 1] === 4 && s[s.length - 2] === 4;

/** Checks a MediaPipe node's options and shapes (its Prepare and Eval checks, and the reads its kernel makes). */
export function checkMediapipeNode(g: Graph, n: Node): void {
  const where = nodeWhere(g, n);
  const shape = (x: string | undefined) => (x ? g.tensors.get(x)?.shape : undefined);
  const ins = n.inputs.map(shape), outs = n.outputs.map(shape);
  if (n.op === landmarksToTransformMatrixOp) {
    const p = landmarksToTransformMatrixParams(g, n);
    if (ins.length !== 1 || outs.length !== 1) throw invalid(where, `takes 1 input and 1 output, has ${ins.length} and ${outs.length}`);
    const x = ins[0];
    if (!x || x.length !== 3) throw invalid(where, `landmarks have shape [${x ?? ''}], not rank 3 [1, N, 3]`);
    const count = size(x) / 3;
    const worst = Math.max(p.leftRotationIdx, p.rightRotationIdx, ...p.subset);
    if (worst >= count) throw invalid(where, `landmark index ${worst} is past the ${count} landmarks of [${x}]`);
    if (!isMatrix(outs[0])) throw invalid(where, `output has shape [${outs[0] ?? ''}], not [1, 4, 4]`);
    return;
  }
  if (n.op === transformTensorBilinearOp) {
    const p = transformTensorBilinearParams(g, n);
    if (ins.length !== 2 || outs.length !== 1) throw invalid(where, `takes 2 inputs and 1 output, has ${ins.length} and ${outs.length}`);
    const [x, m] = ins, y = outs[0];
    if (!x || x.length !== 4 || x[0] !== 1) throw invalid(where, `data has shape [${x ?? ''}], not [1, H, W, C]`);
    if (!isMatrix(m)) throw invalid(where, `matrix has shape [${m ?? ''}], not [1, 4, 4]`);
    const want = [1, p.outputHeight, p.outputWidth, x[3]];
    if (!y || y.join() !== want.join()) throw invalid(where, `output has shape [${y ?? ''}], the options and data give [${want}]`);
    return;
  }
  if (n.op === transformLandmarksOp) {
    checkVersion(g, n);
    if (ins.length !== 2 || outs.length !== 1) throw invalid(where, `takes 2 inputs and 1 output, has ${ins.length} and ${outs.length}`);
    const [x, m] = ins, y = outs[0];
    if (!x || x.length !== 3 || x[0] !== 1 || (x[2] !== 2 && x[2] !== 3)) throw invalid(where, `landmarks have shape [${x ?? ''}], not [1, N, 2] or [1, N, 3]`);
    if (!isMatrix(m)) throw invalid(where, `matrix has shape [${m ?? ''}], not [1, 4, 4]`);
    if (!y || y.join() !== x.join()) throw invalid(where, `output has shape [${y ?? ''}], not the landmarks' [${x}]`);
    return;
  }
  throw new Error(`internal: ${where} is not a MediaPipe op`);
}

type Mat = Float32Array<ArrayBuffer>;
/** Row-major float32 product as MediaPipe's Mat3/Mat4 compute it: sum = 0, sum += a(r, k) * b(k, c) in order. */
function matMul(a: Mat, b: Mat, dim: number): Mat {
  const out = new Float32Array(dim * dim);
  for (let r = 0; r < dim; r++) {
    for (let c = 0; c < dim; c++) {
      let sum = 0;
      for (let k = 0; k < dim; k++) sum = f(sum + f(a[r * dim + k] * b[k * dim + c]));
      out[r * dim + c] = sum;
    }
  }
  return out;
}

function mat3Vec(a: Mat, v: number[]): number[] {
  return [0, 1, 2].map((r) => {
    let sum = 0;
    for (let k = 0; k < 3; k++) sum = f(sum + f(a[r * 3 + k] * v[k]));
    return sum;
  });
}

const rotation3 = (r: number): Mat => Float32Array.of(f(Math.cos(r)), f(-f(Math.sin(r))), 0, f(Math.sin(r)), f(Math.cos(r)), 0, 0, 0, 1);

/** Landmarks2TransformMatrix (version 2) of landmarks [N, 3] (x, y, z per landmark): the 4x4 matrix, row-major. */
export function landmarksToTransformMatrix(p: LandmarksToTransformMatrixParams, landmarks: ArrayLike<number>): Float32Array {
  const at = (i: number, c: number) => f(landmarks[i * 3 + c]);
  // EstimateRotationRadians
  const angle = f(Math.atan2(f(at(p.rightRotationIdx, 1) - at(p.leftRotationIdx, 1)), f(at(p.rightRotationIdx, 0) - at(p.leftRotationIdx, 0))));
  const r = f(p.targetRotationRadians - angle);
  // EstimateCenterAndSize: the subset's landmarks (z set to 1) rotated by r, their box, its centre rotated back.
  const rot = rotation3(r), inv = rotation3(f(-r));
  const pts = p.subset.map((i) => mat3Vec(rot, [at(i, 0), at(i, 1), 1]));
  const max = [...pts[0]], min = [...pts[0]];
  for (const q of pts.slice(1)) {
    if (max[0] < q[0]) max[0] = q[0];
    if (max[1] < q[1]) max[1] = q[1];
    if (min[0] > q[0]) min[0] = q[0];
    if (min[1] > q[1]) min[1] = q[1];
  }
  const cropWidth = f(max[0] - min[0]), cropHeight = f(max[1] - min[1]);
  const centre = mat3Vec(inv, [f(f(min[0] + max[0]) / 2), f(f(min[1] + max[1]) / 2), min[2]]);
  // The matrix: T(centre) R(-r) S(scale) T(-output size / 2).
  const id = () => Float32Array.of(1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1);
  const shift = (x: number, y: number) => { const m = id(); m[3] = x; m[7] = y; return m; };
  const q = f(-r);
  const rotate = id();
  rotate.set([f(Math.cos(q)), f(-f(Math.sin(q)))], 0);
  rotate.set([f(Math.sin(q)), f(Math.cos(q))], 4);
  const scale = id();
  scale[0] = f(f(p.scaleX * cropWidth) / p.outputWidth);
  scale[5] = f(f(p.scaleY * cropHeight) / p.outputHeight);
  let t: Mat = id();
  for (const m of [shift(centre[0], centre[1]), rotate, scale, shift(f(-(p.outputWidth / 2)), f(-(p.outputHeight / 2)))]) t = matMul(t, m, 4);
  return t;
}

/** TransformTensorBilinear (version 2) of NHWC data [H, W, C] (batch 1) with a 4x4 matrix: [outH, outW, C]. */
export function transformTensorBilinear(p: TransformTensorBilinearParams, data: ArrayLike<number>, h: number, w: number, c: number, matrix: ArrayLike<number>): Float32Array {
  const xt = [0, 1, 2, 3].map((k) => f(matrix[k])), yt = [4, 5, 6, 7].map((k) => f(matrix[k]));
  // Half-pixel centres (MediaPipe's "align corners correction"), in double as the C++ adds double constants.
  xt[3] = f(xt[3] + (xt[0] * 0.5 + xt[1] * 0.5 - 0.5));
  yt[3] = f(yt[3] + (yt[0] * 0.5 + yt[1] * 0.5 - 0.5));
  const dot = (v: number[], x: number, y: number) => f(f(f(f(v[0] * x) + f(v[1] * y)) + f(v[2] * 0)) + f(v[3] * 1));
  const out = new Float32Array(p.outputHeight * p.outputWidth * c);
  const read = (y: number, x: number, z: number) => (y < 0 || x < 0 || y >= h || x >= w ? 0 : f(data[(y * w + x) * c + z]));
  for (let oy = 0; oy < p.outputHeight; oy++) {
    for (let ox = 0; ox < p.outputWidth; ox++) {
      const tx = dot(xt, ox, oy), ty = dot(yt, ox, oy);
      if (tx < 0 || tx > w - 1 || ty < 0 || ty > h - 1) continue;
      const x0 = Math.floor(tx), y0 = Math.floor(ty);
      const right = f(tx - x0), lower = f(ty - y0);
      const o = (oy * p.outputWidth + ox) * c;
      for (let z = 0; z < c; z++) {
        // (1.0 - w) is double in the C++, w * q float: each product rounded as there.
        const upperV = f((1 - right) * read(y0, x0, z) + f(right * read(y0, x0 + 1, z)));
        const lowerV = f((1 - right) * read(y0 + 1, x0, z) + f(right * read(y0 + 1, x0 + 1, z)));
        out[o + z] = f(f(lower * lowerV) + (1 - lower) * upperV);
      }
    }
  }
  return out;
}

/** TransformLandmarks (version 2) of landmarks [N, dims] with a 4x4 matrix. */
export function transformLandmarks(landmarks: ArrayLike<number>, n: number, dims: number, matrix: ArrayLike<number>): Float32Array {
  const xt = [0, 1, 2, 3].map((k) => f(matrix[k])), yt = [4, 5, 6, 7].map((k) => f(matrix[k]));
  const dot = (v: number[], x: number, y: number) => f(f(f(f(v[0] * x) + f(v[1] * y)) + f(v[2] * 0)) + f(v[3] * 1));
  const out = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) {
    const x = f(landmarks[i * dims]), y = f(landmarks[i * dims + 1]);
    out[i * dims] = dot(xt, x, y);
    out[i * dims + 1] = dot(yt, x, y);
    if (dims === 3) out[i * dims + 2] = landmarks[i * dims + 2];
  }
  return out;
}

/** Runs MediaPipe node `n` on its inputs (read by tensor name): its one output. */
export function runMediapipeNode(g: Graph, n: Node, read: (x: string) => ArrayLike<number>): Float32Array {
  checkMediapipeNode(g, n);
  const shape = (x: string) => g.tensors.get(x)!.shape;
  if (n.op === landmarksToTransformMatrixOp) return landmarksToTransformMatrix(landmarksToTransformMatrixParams(g, n), read(n.inputs[0]));
  if (n.op === transformTensorBilinearOp) {
    const [, h, w, c] = shape(n.inputs[0]);
    return transformTensorBilinear(transformTensorBilinearParams(g, n), read(n.inputs[0]), h, w, c, read(n.inputs[1]));
  }
  const [, count, dims] = shape(n.inputs[0]);
  return transformLandmarks(read(n.inputs[0]), count, dims, read(n.inputs[1]));
}
