// foldResizesIntoResiduals: a Resize whose only reader is a pointwise Conv's or a DW-PW FCM's residual becomes a
// residual read through the resize (kernels/resize.ts residualSampler): the conv's epilogue reads the lower-resolution
// tensor and interpolates it as the Resize would have. Feature-pyramid decoders end their top-down steps so, the
// upsampled coarser map added to a lateral 1x1 conv (MediaPipe's face detector full range, its pose landmark models):
// the Resize was a dispatch that wrote a map 4x the size of its input, read once by the Add the conv had taken.
//   Resize(x) -> r;  Conv(y, w, b?, r, s?) -> z        =>  Conv{residualResize mode}(y, w, b?, x, s?) -> z
//   Resize(x) -> r;  FusedDwPw(y, w1, b1?, w2, b2?, r)  =>  FusedDwPw{residualResize mode}(y, w1, b1?, w2, b2?, x)
// Pattern and rules (resizedResidualMatch), separate from the choice to apply them (always, where the rules hold: one
// dispatch less and the upsampled map never written; FCM_OPT_RESIZED_RESIDUAL=0 in the environment turns it off):
//   - the Resize is default-domain, one output r, 4-D float32 of known shapes, [N, C, h, w] -> [N, C, H, W] (batch
//     and channels kept); mode 'linear' or 'nearest' with a nearest_mode kernels/resize.ts takes; a
//     coordinate_transformation_mode other than tf_crop_and_resize; no antialias, no axes, policy 'stretch'; its
//     scales (where given) are the lengths' ratio, so that the reader needs the shapes only;
//   - r has exactly one reader and is no graph output; the reader reads it only as its residual: a default-domain
//     pointwise Conv (1x1, stride 1, no pads, dilation 1, group 1) at input 3 with no shuffled or channels-last store,
//     or a FusedDwPw at input 5 with no channels-last store; neither reads a resized residual yet.
// The reader keeps its place (x is computed before the Resize, so before it). Float graphs only (src/pipeline/
// pipeline.ts): the integer registry refuses the attribute. In fp16 the interpolated value is added in f32 without
// the rounding to f16 the Resize's store did: the folded run is the more exact one.

import type { AttrValue, Graph, Node } from '../graph/ir.js';
import { fcmDomain, newAttrs } from '../graph/ir.js';
import { cloneGraph } from '../graph/util.js';

const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';
const ints = (v: AttrValue | undefined): number[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined);
const str = (v: AttrValue | undefined, def: string) => (v === undefined ? def : typeof v === 'string' ? v : undefined);

/** Whether the fold runs: FCM_OPT_RESIZED_RESIDUAL=0 in the environment turns it off (A/B timing in one build). */
export function resizedResidualEnabled(): boolean {
  return !(typeof process !== 'undefined' && process.env?.FCM_OPT_RESIZED_RESIDUAL === '0');
}

/** A Resize the rules admit: its index, its reader's, the reader's residual slot and the attributes it takes. */
export interface ResizedResidualMatch { resize: number; reader: number; slot: number; attrs: Record<string, string> }

const ctms = new Set(['half_pixel', 'pytorch_half_pixel', 'asymmetric', 'tf_half_pixel_for_nn', 'align_corners']);
const nearestModes = new Set(['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']);

/** The residual slot of a reader the rules admit, else a reason. */
function residualSlot(g: Graph, n: Node): number | string {
  if (n.attrs.residualResize !== undefined || n.attrs.channelsLast !== undefined) return 'the reader reads a resized residual or stores channels-last already';
  if (n.domain === fcmDomain && n.op === 'FusedDwPw') return 5;
  if (!plain(n) || n.op !== 'Conv') return 'the reader is no Conv or FusedDwPw';
  if (n.attrs.shuffleGroups !== undefined) return 'the Conv has a shuffled store';
  const w = g.tensors.get(n.inputs[1] ?? '');
  const all = (k: string, len: number, v: number) => { const a = ints(n.attrs[k]); return a === undefined || (a.length === len && a.every((x) => x === v)); };
  const pointwise = !!w && !w.shapeUnknown && w.shape.length === 4 && w.shape[2] === 1 && w.shape[3] === 1
    && all('kernel', 2, 1) && all('strides', 2, 1) && all('pads', 4, 0) && all('dilations', 2, 1) && (n.attrs.group === undefined || n.attrs.group === 1);
  return pointwise ? 3 : 'the Conv is not pointwise';
}

/**
 * The rules above for node `ri` of `g`: a match, or why not (a short reason, for tests and diagnostics).
 * `readers` maps tensor names to node indices (readers without repeats).
 */
export function resizedResidualMatch(g: Graph, ri: number, readers: ReadonlyMap<string, readonly number[]>): ResizedResidualMatch | string {
  const n = g.nodes[ri];
  if (!plain(n) || n.op !== 'Resize') return 'not a Resize';
  if (n.outputs.length !== 1 || !n.outputs[0] || !n.inputs[0]) return 'not one input and one output';
  const x = g.tensors.get(n.inputs[0]), r = g.tensors.get(n.outputs[0]);
  if (!x || !r || x.shapeUnknown || r.shapeUnknown || x.dtype !== 'float32' || r.dtype !== 'float32') return 'tensors not float32 of known shape';
  if (x.shape.length !== 4 || r.shape.length !== 4 || x.shape[0] !== r.shape[0] || x.shape[1] !== r.shape[1]) return 'not a 4-D resize of the spatial axes';
  if (x.shape.some((d) => d < 1)) return 'an empty tensor';
  const mode = str(n.attrs.mode, 'nearest'), ctm = str(n.attrs.coordinate_transformation_mode, 'half_pixel'), nearest = str(n.attrs.nearest_mode, 'round_prefer_floor');
  if (mode !== 'linear' && mode !== 'nearest') return `mode ${String(n.attrs.mode)}`;
  if (!ctm || !ctms.has(ctm)) return `coordinate_transformation_mode ${String(n.attrs.coordinate_transformation_mode)}`;
  if (mode === 'nearest' && (!nearest || !nearestModes.has(nearest))) return `nearest_mode ${String(n.attrs.nearest_mode)}`;
  if ((n.attrs.antialias !== undefined && n.attrs.antialias !== 0) || n.attrs.axes !== undefined || str(n.attrs.keep_aspect_ratio_policy, 'stretch') !== 'stretch') return 'antialias, axes or an aspect-ratio policy';
  const scales = n.attrs.scales;
  if (scales !== undefined) {
    const s = ints(scales);
    if (!s || s.length !== 4 || s.some((v, k) => Math.fround(v) !== Math.fround(r.shape[k] / x.shape[k]))) return 'scales that are not the lengths\' ratio';
  } else if (!n.inputs[3]) {
    return 'neither constant scales nor sizes';
  }
  const y = n.outputs[0];
  if (g.outputs.includes(y)) return 'the output is a graph output';
  const rs = readers.get(y) ?? [];
  if (rs.length !== 1) return 'the output has another reader';
  const reader = g.nodes[rs[0]];
  const slot = residualSlot(g, reader);
  if (typeof slot === 'string') return slot;
  if (reader.inputs[slot] !== y || reader.inputs.some((t, k) => t === y && k !== slot)) return 'the reader reads it other than as its residual';
  const attrs: Record<string, string> = { residualResize: mode, residualResizeCtm: ctm };
  if (mode === 'nearest') attrs.residualResizeNearest = nearest!;
  return { resize: ri, reader: rs[0], slot, attrs };
}

export function foldResizesIntoResiduals(g0: Graph): Graph {
  if (!g0.nodes.some((n) => n.op === 'Resize')) return g0;
  const readers = new Map<string, number[]>();
  g0.nodes.forEach((n, i) => { for (const x of new Set(n.inputs)) if (x) (readers.get(x) ?? readers.set(x, []).get(x)!).push(i); });
  const matches = g0.nodes.map((_, i) => resizedResidualMatch(g0, i, readers)).filter((m): m is ResizedResidualMatch => typeof m !== 'string');
  if (!matches.length) return g0;
  const g = cloneGraph(g0);
  const drop = new Set<number>();
  for (const m of matches) {
    const resize = g0.nodes[m.resize], reader = g0.nodes[m.reader];
    const inputs = [...reader.inputs];
    inputs[m.slot] = resize.inputs[0];
    g.nodes[m.reader] = { ...reader, inputs, attrs: newAttrs({ ...reader.attrs, ...m.attrs }) };
    drop.add(m.resize);
    g.tensors.delete(resize.outputs[0]);
  }
  g.nodes = g.nodes.filter((_, i) => !drop.has(i));
  return g;
}
