// Reads and validates a FusePlanner layer DAG (`model_dag.json`, see src/planner/dag.ts). The planners
// trust what passes here: ids equal positions, edges are consistent both ways, the graph is acyclic, conv
// layers carry the shapes their cost models read and a conv layer reads what its conv parent writes. Errors name the file and the layer.
import { defaultMaxMemory } from '../../converters/options.js';
import { readInputTextSync } from '../input-file.js';
import { invalid, overLimit } from '../errors.js';
import { dilationHW, fcWeightsShape, strideHW, type Dag, type DagLayer } from './dag.js';

/** Weight-shape rank per conv type: s [F, C, K, K], dw [C, K, K], pw [F, C], fc [F, C]. */
const weightsRank: Record<string, number> = { s: 4, dw: 3, pw: 2, fc: 2 };
const convTypes = new Set(['s', 'dw', 'pw']);

/** Reads `path` (a regular file within `maxMemory` bytes: src/input-file.ts) and validates it (see validateDag). */
export function loadDag(path: string, maxMemory = defaultMaxMemory): Dag {
  const text = readInputTextSync(path, { maxBytes: maxMemory });
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw invalid(path, `not valid JSON: ${(e as Error).message}`);
  }
  return validateDag(data, path);
}

const isInt = (v: unknown): v is number => Number.isInteger(v);
const isIntArray = (v: unknown): v is number[] => Array.isArray(v) && v.every(isInt);
/** A per-axis field (strides, dilations): one positive integer for both axes, or [H, W]. */
const isAxisField = (v: unknown): v is number | number[] =>
  (isInt(v) && v > 0) || (isIntArray(v) && v.length === 2 && v.every((x) => x > 0));

/**
 * Largest dimension and element count of a layer's shapes. The planners walk tiles over these sizes and
 * the kernels index with 32-bit integers; a DAG past them (a 2^31-wide layer hung the optimal planner,
 * fuzz crash E) is refused with exit 4 before any planning.
 */
export const maxDagDim = 2 ** 24;
export const maxDagElements = 2 ** 31;

function checkSize(shape: readonly number[], field: string, where: string): void {
  let n = 1;
  for (const d of shape) {
    if (d > maxDagDim) throw overLimit(where, `'${field}' [${shape.join(', ')}] has a dimension over ${maxDagDim}`);
    n *= Math.max(d, 0);
  }
  if (n > maxDagElements) throw overLimit(where, `'${field}' [${shape.join(', ')}] has more than ${maxDagElements} elements`);
}

/** Checks a parsed DAG; `file` names it in messages. Returns the same array, typed. */
export function validateDag(data: unknown, file: string): Dag {
  if (!Array.isArray(data)) throw invalid(file, 'a layer DAG must be a JSON array of layers');
  if (data.length === 0) throw invalid(file, 'the layer DAG has no layers');
  const n = data.length;
  data.forEach((raw, pos) => {
    const at = `${file}: layer ${pos}`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid(at, 'is not a JSON object');
    const l = raw as Record<string, unknown>;
    if (!('id' in l)) throw invalid(at, "missing field 'id'");
    if (!isInt(l.id)) throw invalid(at, "field 'id' must be an integer");
    if (l.id !== pos) throw invalid(at, `has id ${l.id}; ids must equal positions in the list (0, 1, 2, ...)`);
    const where = `${file}: layer ${pos}${typeof l.name === 'string' ? ` ('${l.name}')` : ''}`;
    for (const f of ['name', 'parents', 'children']) if (!(f in l)) throw invalid(where, `missing field '${f}'`);
    if (typeof l.name !== 'string') throw invalid(where, "field 'name' must be a string");
    if (l.activation !== undefined && typeof l.activation !== 'string') throw invalid(where, "field 'activation' must be a string");
    for (const f of ['parents', 'children'] as const) {
      const ids = l[f];
      if (!isIntArray(ids)) throw invalid(where, `field '${f}' must be an array of layer ids`);
      for (const id of ids) {
        if (id < 0 || id >= n) throw invalid(where, `${f} lists layer ${id}, which does not exist (layers 0..${n - 1})`);
        if (id === pos) throw invalid(where, `lists itself in '${f}' (a cycle)`);
      }
    }
    for (const f of ['ifms_shape', 'ofms_shape', 'weights_shape'] as const) {
      if (l[f] !== undefined && !isIntArray(l[f])) throw invalid(where, `field '${f}' must be an array of integers`);
      if (l[f] !== undefined) checkSize(l[f] as number[], f, where);
    }
    if (l.type !== undefined && typeof l.type !== 'string') throw invalid(where, "field 'type' must be a string");
    if (typeof l.type === 'string' && Object.hasOwn(weightsRank, l.type)) checkConv(l, where);
  });
  const dag = data as Dag;
  // Edges must agree both ways, as often: a layer that reads one tensor twice (Sub(x, x)) lists its parent twice,
  // and the parent it twice as a child, as the FusePlanner reference's extractor writes them.
  const times = (ids: readonly number[], id: number) => ids.reduce((k, x) => k + (x === id ? 1 : 0), 0);
  const twice = (k: number) => (k === 1 ? 'once' : k === 2 ? 'twice' : `${k} times`);
  for (const l of dag) {
    for (const c of new Set(l.children)) {
      const a = times(l.children, c), b = times(dag[c].parents, l.id);
      if (b === 0) throw invalid(`${file}: layer ${l.id} ('${l.name}')`, `lists child ${c}, but layer ${c} does not list it as a parent`);
      if (a !== b) throw invalid(`${file}: layer ${l.id} ('${l.name}')`, `lists child ${c} ${twice(a)}, but layer ${c} lists it as a parent ${twice(b)}`);
    }
    for (const p of new Set(l.parents)) {
      if (!dag[p].children.includes(l.id)) throw invalid(`${file}: layer ${l.id} ('${l.name}')`, `lists parent ${p}, but layer ${p} does not list it as a child`);
    }
  }
  checkAcyclic(dag, file);
  checkConvEdges(dag, file);
  return dag;
}

const isConvLayer = (l: DagLayer) => typeof l.type === 'string' && convTypes.has(l.type);
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Where a conv layer reads another conv layer's output, the tensor between them is one: the child's input must be its
 * conv parent's output (or, for a conv with a residual epilogue, its own output shape). The cost models count the
 * parent's writes from its ofms and the pair's savings from the child's ifms; a DAG where the two disagree gave the
 * fuseplanner mode savings larger than the layers' traffic, and so a negative total GMA. The FusePlanner reference's
 * DAGs, whose other layers may change layout ([1, H, W, C] against [C, H, W]), always agree on conv-to-conv edges.
 */
function checkConvEdges(dag: Dag, file: string): void {
  for (const l of dag) {
    if (!isConvLayer(l)) continue;
    const convParents = [...new Set(l.parents)].filter((p) => isConvLayer(dag[p]));
    if (!convParents.length) continue;
    const ifms = l.ifms_shape as number[], ofms = l.ofms_shape as number[];
    const residual = l.parents.length > 1;
    for (const p of convParents) {
      const po = dag[p].ofms_shape as number[];
      if (sameShape(po, ifms) || (residual && sameShape(po, ofms))) continue;
      throw invalid(`${file}: layer ${l.id} ('${l.name}')`, `reads [${ifms.join(', ')}], but its parent layer ${p} ('${dag[p].name}') writes [${po.join(', ')}]`);
    }
  }
}

function checkConv(l: Record<string, unknown>, where: string): void {
  const type = l.type as string;
  // The FusePlanner reference's extractor writes fc layers without weights_shape (its planner estimates none): they
  // come from the fc layer's shapes (dag.ts fcWeightsShape).
  if (type === 'fc' && l.weights_shape === undefined) {
    const ws = fcWeightsShape(l as DagLayer);
    if (!ws) throw invalid(where, "'fc' layer has no 'weights_shape' and no 'ifms_shape' and 'ofms_shape' to derive it from");
    if (ws.some((d) => d <= 0)) throw invalid(where, `'fc' weights [${ws.join(', ')}] derived from its shapes have a non-positive dimension`);
    return;
  }
  for (const f of ['weights_shape', ...(convTypes.has(type) ? ['ifms_shape', 'ofms_shape', 'strides'] : [])]) {
    if (l[f] === undefined) throw invalid(where, `'${type}' layer is missing field '${f}'`);
  }
  // An fc layer's shapes are of any rank (the FusePlanner reference writes [1, 1000]); its cost divides by them.
  if (type === 'fc') {
    for (const f of ['ifms_shape', 'ofms_shape'] as const) {
      const s = l[f] as number[] | undefined;
      if (s && (s.length === 0 || s.some((d) => d <= 0))) throw invalid(where, `'${f}' of an fc layer must have positive sizes, got [${s.join(', ')}]`);
    }
  }
  const ws = l.weights_shape as number[];
  if (ws.length !== weightsRank[type]) throw invalid(where, `'${type}' weights_shape must have ${weightsRank[type]} dimensions, got [${ws.join(', ')}]`);
  if (ws.some((d) => d <= 0)) throw invalid(where, `weights_shape [${ws.join(', ')}] has a non-positive dimension`);
  if (!convTypes.has(type)) return;
  for (const f of ['ifms_shape', 'ofms_shape'] as const) {
    const s = l[f] as number[];
    if (s.length !== 3 || s.some((d) => d <= 0)) throw invalid(where, `'${f}' of a conv layer must be [C, H, W] with positive sizes, got [${s.join(', ')}]`);
  }
  if (!isAxisField(l.strides)) throw invalid(where, "field 'strides' must be a positive integer or [H, W] of positive integers");
  const [ci] = l.ifms_shape as number[];
  const [co] = l.ofms_shape as number[];
  // Channel counts must match the weights, or the cost models compute nonsense.
  if (type === 'dw' && (ws[0] !== ci || co !== ci)) throw invalid(where, `depthwise weights [${ws.join(', ')}] do not match ${ci} input / ${co} output channels`);
  if (type === 'pw' && (ws[1] !== ci || ws[0] !== co)) throw invalid(where, `weights [${ws.join(', ')}] do not match ${ci} input / ${co} output channels`);
  // A grouped standard conv has weights [F, C/group, K, K] (src/planner/to-dag.ts); the FusePlanner reference's have group 1.
  if (type === 's' && (ci % ws[1] !== 0 || ws[0] !== co)) throw invalid(where, `weights [${ws.join(', ')}] do not match ${ci} input / ${co} output channels`);
  checkSpatial(l, type, ws, where);
}

/**
 * The output size must follow from input, kernel, stride, dilation and padding. With padding recorded
 * (`pads` [t, l, b, r], or padding_* fields) it must follow exactly. A stride given per axis ([sH, sW], as
 * fcm-opt writes a rectangular one) is taken as it is. A single stride (the FusePlanner reference's form, and
 * older fcm-opt DAGs that kept only the H stride of a rectangular one) may be wrong along an axis, so there an
 * axis is accepted when some whole stride explains its output (cost.ts convSpec derives that stride too). The
 * FusePlanner reference's DAGs record no padding and sometimes a too-small stride (stride 1 for Xception's
 * strided 1x1 shortcuts), so then only the largest output any padding up to a full kernel on each side and a
 * stride at least the recorded one can give is enforced: an output larger than that is inconsistent.
 */
function checkSpatial(l: Record<string, unknown>, type: string, ws: number[], where: string): void {
  if (l.dilations !== undefined && !isAxisField(l.dilations)) throw invalid(where, "field 'dilations' must be a positive integer or [H, W] of positive integers");
  const [dh, dw] = dilationHW(l as DagLayer);
  const [sh, sw] = strideHW(l as DagLayer);
  const perAxisStride = Array.isArray(l.strides);
  const [, ih, iw] = l.ifms_shape as number[];
  const [, oh, ow] = l.ofms_shape as number[];
  const kh = type === 'pw' ? 1 : ws[ws.length - 2];
  const kw = type === 'pw' ? 1 : ws[ws.length - 1];
  const out = (n: number, k: number, p: number, s: number, d: number) => Math.floor((n + p - (k - 1) * d - 1) / s) + 1;
  const geometry = `kernel ${kh}x${kw}, stride ${fmtAxis(sh, sw)}, dilation ${fmtAxis(dh, dw)}`;
  let pads: unknown[] | undefined;
  if (l.pads !== undefined) {
    if (!Array.isArray(l.pads) || l.pads.length !== 4) throw invalid(where, "field 'pads' must be [top, left, bottom, right]");
    pads = l.pads;
  } else if (l.padding_top !== undefined || l.padding_left !== undefined || l.padding_bottom !== undefined || l.padding_right !== undefined) {
    pads = [l.padding_top ?? 0, l.padding_left ?? 0, l.padding_bottom ?? 0, l.padding_right ?? 0];
  }
  if (pads) {
    if (!pads.every((p) => isInt(p) && p >= 0 && p <= maxDagDim)) throw invalid(where, `padding [${pads.join(', ')}] must be non-negative integers up to ${maxDagDim}`);
    // The pointwise cost models and FCMs keep the map: a padded 1x1 convolution is a standard layer ('s').
    if (type === 'pw' && (pads as number[]).some((p) => p !== 0)) throw invalid(where, `a pointwise layer has no padding, got [${pads.join(', ')}] (a padded 1x1 convolution is type 's')`);
    const [pt, pl, pb, pr] = pads as number[];
    const eh = out(ih, kh, pt + pb, sh, dh), ew = out(iw, kw, pl + pr, sw, dw);
    if (perAxisStride) {
      if (eh !== oh || ew !== ow) {
        throw invalid(where, `output [${oh}, ${ow}] does not follow from input [${ih}, ${iw}], ${geometry}, pads [${pads.join(', ')}] (expected [${eh}, ${ew}])`);
      }
      return;
    }
    const someStride = (n: number, k: number, p: number, o: number, d: number) => {
      const span = n + p - (k - 1) * d - 1;
      if (span < 0) return false;
      const lo = Math.floor(span / o) + 1, hi = o > 1 ? Math.floor(span / (o - 1)) : Infinity;
      return lo <= hi;
    };
    if (!someStride(ih, kh, pt + pb, oh, dh) || !someStride(iw, kw, pl + pr, ow, dw)) {
      throw invalid(where, `output [${oh}, ${ow}] does not follow from input [${ih}, ${iw}], kernel ${kh}x${kw}, dilation ${fmtAxis(dh, dw)}, pads [${pads.join(', ')}] with stride ${sh} (expected [${eh}, ${ew}]) or any other stride`);
    }
    return;
  }
  const mh = out(ih, kh, 2 * (kh - 1) * dh, sh, dh), mw = out(iw, kw, 2 * (kw - 1) * dw, sw, dw);
  if (oh > mh || ow > mw) {
    throw invalid(where, `output [${oh}, ${ow}] is larger than input [${ih}, ${iw}] with ${geometry} and any padding up to the kernel can give ([${mh}, ${mw}] at most)`);
  }
}

const fmtAxis = (h: number, w: number) => (h === w ? `${h}` : `[${h}, ${w}]`);

/** Kahn's algorithm; on a cycle, names a layer on it. */
function checkAcyclic(dag: Dag, file: string): void {
  const indegree = dag.map((l) => l.parents.length);
  const queue = dag.filter((l) => l.parents.length === 0).map((l) => l.id);
  let visited = 0;
  while (queue.length > 0) {
    const id = queue.pop()!;
    visited++;
    for (const c of dag[id].children) if (--indegree[c] === 0) queue.push(c);
  }
  if (visited === dag.length) return;
  // Walk parents among unvisited layers until one repeats: that layer is on a cycle.
  const left = new Set(dag.filter((_, i) => indegree[i] > 0).map((l) => l.id));
  let id = [...left].reduce((a, b) => Math.min(a, b));
  const seen = new Set<number>();
  while (!seen.has(id)) {
    seen.add(id);
    id = dag[id].parents.find((p) => left.has(p))!;
  }
  const layer: DagLayer = dag[id];
  throw invalid(`${file}: layer ${id} ('${layer.name}')`, 'is on a cycle of parent/child edges');
}
