// ONNX LSTM (layout 0, the default activations Sigmoid/Tanh/Tanh) on the host: the float executor runs it as a
// host step (host-float.ts). The recurrent models fcm-opt meets run it on a handful of time steps with a hidden size
// of ~128 (Silero VAD: one step, 128 units, 131k multiply-adds), far below a dispatch's cost; each step depends on
// the one before, which a GPU kernel would serialize anyway.
//
// Per direction and time step, gates in ONNX's order i, o, f, c (W [D, 4H, I], R [D, 4H, H], B [D, 8H] = Wb then Rb,
// P [D, 3H] = peepholes i, o, f):
//   i = σ(W_i x + R_i h + Wb_i + Rb_i + P_i ⊙ c)    f = σ(W_f x + R_f h + Wb_f + Rb_f + P_f ⊙ c)
//   g = tanh(W_c x + R_c h + Wb_c + Rb_c)          c' = f ⊙ c + i ⊙ g
//   o = σ(W_o x + R_o h + Wb_o + Rb_o + P_o ⊙ c')  h' = o ⊙ tanh(c')
// Outputs Y [T, D, B, H], Y_h and Y_c [D, B, H] (the reverse direction's last state is the one at t = 0).
// Sums in float64, results stored as float32.
import { invalid, unsupported } from '../errors.js';
import type { Graph, Node } from '../graph/ir.js';
import { nodeWhere } from '../graph/util.js';

export interface LstmParams { hidden: number; direction: 'forward' | 'reverse' | 'bidirectional' }

const defaultActivations = ['sigmoid', 'tanh', 'tanh'];

/** The node's parameters; what this implementation does not take (clip, coupled gates, other activations, layout 1,
 *  per-batch sequence lengths) is refused naming the node (exit 3). */
export function lstmParams(g: Graph, n: Node): LstmParams {
  const where = nodeWhere(g, n);
  const a = n.attrs;
  const direction = a.direction ?? 'forward';
  if (direction !== 'forward' && direction !== 'reverse' && direction !== 'bidirectional') throw invalid(where, `direction '${String(direction)}' is not forward, reverse or bidirectional`);
  const hidden = a.hidden_size;
  if (typeof hidden !== 'number' || !Number.isInteger(hidden) || hidden < 1) throw invalid(where, 'hidden_size must be a whole number >= 1');
  if (a.clip !== undefined) throw unsupported(where, 'LSTM with clip is not supported');
  if (a.input_forget !== undefined && a.input_forget !== 0) throw unsupported(where, 'LSTM with input_forget (coupled input and forget gates) is not supported');
  if (a.layout !== undefined && a.layout !== 0) throw unsupported(where, 'LSTM with layout 1 (batch first) is not supported');
  const acts = a.activations;
  if (acts !== undefined) {
    const dirs = direction === 'bidirectional' ? 2 : 1;
    const want = Array.from({ length: dirs }, () => defaultActivations).flat();
    if (!Array.isArray(acts) || acts.length !== want.length || acts.some((x, i) => String(x).toLowerCase() !== want[i])) {
      throw unsupported(where, `LSTM activations ${JSON.stringify(acts)} are not supported (only the default Sigmoid, Tanh, Tanh)`);
    }
  }
  if (a.activation_alpha !== undefined || a.activation_beta !== undefined) throw unsupported(where, 'LSTM activation_alpha/activation_beta are not supported');
  if (n.inputs[4]) throw unsupported(where, 'LSTM with sequence_lens is not supported (every sequence runs all time steps)');
  return { hidden, direction };
}

/** Checks input and output shapes; returns T, B, I and the number of directions. */
export function checkLstmShapes(where: string, p: LstmParams, ins: (number[] | undefined)[], outs: (number[] | undefined)[]): { T: number; B: number; I: number; D: number } {
  const [x, w, r, b, , h0, c0, peep] = ins;
  const D = p.direction === 'bidirectional' ? 2 : 1, H = p.hidden;
  const same = (s: number[] | undefined, want: number[]) => !!s && s.length === want.length && s.every((d, i) => d === want[i]);
  if (!x || x.length !== 3) throw invalid(where, `X must be [seq_length, batch, input_size], got [${x ?? ''}]`);
  const [T, B, I] = x;
  const need = (name: string, s: number[] | undefined, want: number[], optional: boolean) => {
    if (s === undefined && optional) return;
    if (!same(s, want)) throw invalid(where, `${name} must be [${want}], got [${s ?? ''}]`);
  };
  need('W', w, [D, 4 * H, I], false);
  need('R', r, [D, 4 * H, H], false);
  need('B', b, [D, 8 * H], true);
  need('initial_h', h0, [D, B, H], true);
  need('initial_c', c0, [D, B, H], true);
  need('P', peep, [D, 3 * H], true);
  const wantOut = [[T, D, B, H], [D, B, H], [D, B, H]];
  outs.forEach((s, i) => { if (s !== undefined) need(['Y', 'Y_h', 'Y_c'][i], s, wantOut[i], false); });
  return { T, B, I, D };
}

const sigmoid = (v: number) => 1 / (1 + Math.exp(-v));

/** Runs the LSTM; optional inputs absent are zeros. */
export function lstm(p: LstmParams, dims: { T: number; B: number; I: number; D: number }, x: ArrayLike<number>, w: ArrayLike<number>, r: ArrayLike<number>,
  bias?: ArrayLike<number>, h0?: ArrayLike<number>, c0?: ArrayLike<number>, peep?: ArrayLike<number>): { y: Float32Array; yh: Float32Array; yc: Float32Array } {
  const { T, B, I, D } = dims, H = p.hidden;
  const y = new Float32Array(T * D * B * H), yh = new Float32Array(D * B * H), yc = new Float32Array(D * B * H);
  const z = new Float64Array(4 * H);
  for (let d = 0; d < D; d++) {
    const reverse = p.direction === 'reverse' || d === 1;
    const W = d * 4 * H * I, R = d * 4 * H * H, Bo = d * 8 * H, P = d * 3 * H;
    for (let b = 0; b < B; b++) {
      const h = new Float64Array(H), c = new Float64Array(H);
      for (let j = 0; j < H; j++) { h[j] = h0 ? h0[(d * B + b) * H + j] : 0; c[j] = c0 ? c0[(d * B + b) * H + j] : 0; }
      for (let s = 0; s < T; s++) {
        const t = reverse ? T - 1 - s : s;
        const X = (t * B + b) * I;
        for (let k = 0; k < 4 * H; k++) {
          let v = bias ? bias[Bo + k] + bias[Bo + 4 * H + k] : 0;
          for (let i = 0; i < I; i++) v += w[W + k * I + i] * x[X + i];
          for (let j = 0; j < H; j++) v += r[R + k * H + j] * h[j];
          z[k] = v;
        }
        for (let j = 0; j < H; j++) {
          const pi = peep ? peep[P + j] : 0, po = peep ? peep[P + H + j] : 0, pf = peep ? peep[P + 2 * H + j] : 0;
          const ig = sigmoid(z[j] + pi * c[j]);
          const fg = sigmoid(z[2 * H + j] + pf * c[j]);
          const gg = Math.tanh(z[3 * H + j]);
          c[j] = fg * c[j] + ig * gg;
          const og = sigmoid(z[H + j] + po * c[j]);
          h[j] = og * Math.tanh(c[j]);
          y[((t * D + d) * B + b) * H + j] = h[j];
        }
      }
      for (let j = 0; j < H; j++) { yh[(d * B + b) * H + j] = h[j]; yc[(d * B + b) * H + j] = c[j]; }
    }
  }
  return { y, yh, yc };
}
