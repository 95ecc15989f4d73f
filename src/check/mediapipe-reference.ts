// MediaPipe's landmark ops (version 2; google/mediapipe, mediapipe/util/tflite/operations/*.cc) in float64, written
// from their definitions apart from the executor's float32 port (src/runtime/mediapipe-ops.ts), in closed form:
// `check` computes them with this between the onnxruntime parts of its reference, and the tests hold the executor's
// port to it. Options are read from the node's attributes (the importer's copy of the flexbuffer options).
// - Landmarks2TransformMatrix: r = target_rotation_radians - atan2(yR - yL, xR - xL); the subset's points (x, y)
//   turned by r, u = x cos r - y sin r, v = x sin r + y cos r, give a box of size (w, h) and centre (uc, vc), turned
//   back to c = (uc cos r + vc sin r, -uc sin r + vc cos r). A crop pixel p goes to c + R(-r) S (p - (W/2, H/2)),
//   S = diag(scale_x w / W, scale_y h / H), W x H the output size: that affine map is the matrix's rows 0 and 1.
// - TransformTensorBilinear: output pixel (i, j) samples (X, Y) = A (j + 1/2, i + 1/2) - 1/2 (A: the matrix's rows
//   0 and 1), bilinear over the four neighbours with zeros outside the data; zero where (X, Y) is outside
//   [0, W - 1] x [0, H - 1].
// - TransformLandmarks: (x, y) -> A (x, y); z kept.
import { invalid } from '../errors.js';
import type { Graph, Node } from '../graph/ir.js';
import { nodeWhere } from '../graph/util.js';

/** Rows 0 and 1 of a 4x4 row-major matrix as the affine map (x, y) -> (a x + b y + c, d x + e y + f). */
const affine = (m: ArrayLike<number>) => ({ a: m[0], b: m[1], c: m[3], d: m[4], e: m[5], f: m[7] });

/** Landmarks2TransformMatrix of landmarks (x, y, z per landmark) in float64: the 4x4 matrix, row-major. */
export function landmarksToMatrix64(o: {
  subset: number[]; left: number; right: number; target: number; width: number; height: number; scaleX: number; scaleY: number;
}, landmarks: ArrayLike<number>): Float64Array {
  const x = (i: number) => landmarks[3 * i], y = (i: number) => landmarks[3 * i + 1];
  const r = o.target - Math.atan2(y(o.right) - y(o.left), x(o.right) - x(o.left));
  const cos = Math.cos(r), sin = Math.sin(r);
  let uMin = Infinity, uMax = -Infinity, vMin = Infinity, vMax = -Infinity;
  for (const i of o.subset) {
    const u = x(i) * cos - y(i) * sin, v = x(i) * sin + y(i) * cos;
    uMin = Math.min(uMin, u); uMax = Math.max(uMax, u); vMin = Math.min(vMin, v); vMax = Math.max(vMax, v);
  }
  const uc = (uMin + uMax) / 2, vc = (vMin + vMax) / 2;
  const cx = uc * cos + vc * sin, cy = -uc * sin + vc * cos;
  const sx = o.scaleX * (uMax - uMin) / o.width, sy = o.scaleY * (vMax - vMin) / o.height;
  // c + R(-r) S (p - (W/2, H/2)), R(-r) = [[cos, sin], [-sin, cos]].
  return Float64Array.of(
    cos * sx, sin * sy, 0, cx - cos * sx * o.width / 2 - sin * sy * o.height / 2,
    -sin * sx, cos * sy, 0, cy + sin * sx * o.width / 2 - cos * sy * o.height / 2,
    0, 0, 1, 0,
    0, 0, 0, 1,
  );
}

/** TransformTensorBilinear of NHWC data [h, w, c] in float64: [outH, outW, c]. */
export function transformBilinear64(data: ArrayLike<number>, h: number, w: number, c: number, matrix: ArrayLike<number>, outH: number, outW: number): Float64Array {
  const A = affine(matrix);
  const out = new Float64Array(outH * outW * c);
  const pixel = (yy: number, xx: number, z: number) => (yy >= 0 && yy < h && xx >= 0 && xx < w ? data[(yy * w + xx) * c + z] : 0);
  for (let i = 0; i < outH; i++) {
    for (let j = 0; j < outW; j++) {
      const X = A.a * (j + 0.5) + A.b * (i + 0.5) + A.c - 0.5;
      const Y = A.d * (j + 0.5) + A.e * (i + 0.5) + A.f - 0.5;
      if (!(X >= 0 && X <= w - 1 && Y >= 0 && Y <= h - 1)) continue;
      const x0 = Math.floor(X), y0 = Math.floor(Y), fx = X - x0, fy = Y - y0;
      for (let z = 0; z < c; z++) {
        let v = 0;
        for (const [dy, wy] of [[0, 1 - fy], [1, fy]]) for (const [dx, wx] of [[0, 1 - fx], [1, fx]]) v += wy * wx * pixel(y0 + dy, x0 + dx, z);
        out[(i * outW + j) * c + z] = v;
      }
    }
  }
  return out;
}

/** TransformLandmarks of n landmarks of `dims` (2 or 3) values in float64. */
export function transformLandmarks64(landmarks: ArrayLike<number>, n: number, dims: number, matrix: ArrayLike<number>): Float64Array {
  const A = affine(matrix);
  const out = new Float64Array(n * dims);
  for (let k = 0; k < n; k++) {
    const x = landmarks[k * dims], y = landmarks[k * dims + 1];
    out[k * dims] = A.a * x + A.b * y + A.c;
    out[k * dims + 1] = A.d * x + A.e * y + A.f;
    if (dims === 3) out[k * dims + 2] = landmarks[k * dims + 2];
  }
  return out;
}

const mediapipeOps = ['landmarks2transformmatrix', 'transformtensorbilinear', 'transformlandmarks'];

/** Whether this file computes node `n` (a MediaPipe landmark op of version 2). */
export const hasMediapipeReference = (n: Node): boolean => n.domain === 'tflite.custom' && mediapipeOps.includes(n.op) && n.attrs.version === 2;

/** Node `n` in float64 on its inputs (by tensor name): its one output. Shapes were checked when fcm-opt's schedule was made. */
export function mediapipeReference(g: Graph, n: Node, read: (x: string) => ArrayLike<number>): Float64Array {
  const where = nodeWhere(g, n);
  const shape = (x: string) => g.tensors.get(x)!.shape;
  const a = n.attrs;
  const number = (k: string) => {
    const v = a[k] ?? 0;
    if (typeof v !== 'number') throw invalid(where, `custom option '${k}' is not a number`);
    return v;
  };
  if (n.op === 'landmarks2transformmatrix') {
    const subset = a.subset_idxs;
    if (!Array.isArray(subset) || !subset.length) throw invalid(where, "custom option 'subset_idxs' is missing");
    return landmarksToMatrix64({
      subset: subset as number[], left: number('left_rotation_idx'), right: number('right_rotation_idx'), target: number('target_rotation_radians'),
      width: number('output_width'), height: number('output_height'), scaleX: number('scale_x'), scaleY: number('scale_y'),
    }, read(n.inputs[0]));
  }
  if (n.op === 'transformtensorbilinear') {
    const [, h, w, c] = shape(n.inputs[0]);
    return transformBilinear64(read(n.inputs[0]), h, w, c, read(n.inputs[1]), number('output_height'), number('output_width'));
  }
  const [, count, dims] = shape(n.inputs[0]);
  return transformLandmarks64(read(n.inputs[0]), count, dims, read(n.inputs[1]));
}
