// TensorFlow's layout conventions as the IR takes them (Keras and TF.js graph models): channels-last tensors of
// rank 4 are NCHW in the IR, kernels are transposed to ONNX's order, and 'same' padding puts the odd pixel last.

export const nhwcToNchw = [0, 3, 1, 2];
export const nchwToNhwc = [0, 2, 3, 1];
/** Position in NCHW of NHWC axis a. */
export const nchwPos = [0, 2, 3, 1];
export const permute = <T>(xs: readonly T[], perm: readonly number[]): T[] => perm.map((p) => xs[p]);

export function transposeF32(data: Float32Array, shape: number[], perm: number[]): Float32Array {
  const rank = shape.length;
  const outShape = permute(shape, perm);
  const strides = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) strides[i] = strides[i + 1] * shape[i + 1];
  const out = new Float32Array(data.length);
  const idx = new Array<number>(rank).fill(0);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let k = 0; k < rank; k++) src += idx[k] * strides[perm[k]];
    out[o] = data[src];
    for (let k = rank - 1; k >= 0; k--) { if (++idx[k] < outShape[k]) break; idx[k] = 0; }
  }
  return out;
}

/** TensorFlow's explicit pads [top, left, bottom, right] for 'same'/'valid' (the odd pixel at the end). */
export function tfPads(padding: string, h: number, w: number, k: [number, number], s: [number, number], d: [number, number]): { pads: number[]; out: [number, number] } {
  const one = (i: number, kk: number, ss: number, dd: number): [number, number, number] => {
    const eff = (kk - 1) * dd + 1;
    if (padding === 'valid') return [0, 0, Math.floor((i - eff) / ss) + 1];
    const o = Math.ceil(i / ss);
    const total = Math.max((o - 1) * ss + eff - i, 0);
    return [Math.floor(total / 2), total - Math.floor(total / 2), o];
  };
  const [t, b, oh] = one(h, k[0], s[0], d[0]);
  const [l, r, ow] = one(w, k[1], s[1], d[1]);
  return { pads: [t, l, b, r], out: [oh, ow] };
}
