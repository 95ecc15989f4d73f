// applyPlan: turns a plan's fused modules into FCM nodes of the graph IR (domain ai.fcm.opt, ops FusedPwDw,
// FusedDwPw, FusedPwPw; the convention of src/graph/ir.ts). Epilogues are folded first (fuseEpilogues), so
// each module is two Conv nodes, possibly with a zero spatial Pad between a PW and a DW (TFLite writes those;
// it is folded into the DW's padding). Legality is checked again on the graph itself, by the rules the planner
// applies to the DAG (src/planner/fusion-rules.ts): a plan made for another graph, or stale, gets a clear error
// naming the module.

import type { AttrValue, Graph, Node } from '../graph/ir.js';
import { fcmDomain, newAttrs, type FcmOp } from '../graph/ir.js';
import type { Plan, PlanModule } from '../planner/plan.js';
import { invalid, unsupported } from '../errors.js';
import { attrInt, attrInts } from '../graph/util.js';
import { convType, fcmKind, mayStandBetween, pointwiseFusable, spatialZeroPads, type ChainLink, type ConvType } from '../planner/fusion-rules.js';
import { fuseEpilogues } from './epilogues.js';

const fcmOps: Record<string, FcmOp> = { pwdw: 'FusedPwDw', dwpw: 'FusedDwPw', pwpw: 'FusedPwPw' };

/** How a module's nodes map onto the graph, once checked. */
export interface FcmMatch {
  conv1: number;
  conv2: number;
  /** Slot of a Pad node between them, folded into the DW's padding. */
  pad?: number;
  /** The DW layer's padding with the Pad's added. */
  dwPads?: number[];
}

/** What a Conv node is to an FCM (fusion-rules.ts convType), from its attributes and tensor shapes; 'other' for a
 * PW with stride or padding and for anything that is no 2-D convolution. */
function convRole(g: Graph, n: Node): ConvType | 'other' {
  const w = g.tensors.get(n.inputs[1]);
  const x = g.tensors.get(n.inputs[0]);
  const y = g.tensors.get(n.outputs[0]);
  if (!w || !x || !y || w.shape.length !== 4 || x.shape.length !== 4 || y.shape.length !== 4) return 'other';
  const kernel = attrInts(g, n, 'kernel') ?? [w.shape[2], w.shape[3]];
  const type = convType(attrInt(g, n, 'group', 1), x.shape[1], y.shape[1], kernel[0], kernel[1]);
  if (type === 'pw' && !pointwiseFusable(attrInts(g, n, 'strides') ?? [1, 1], attrInts(g, n, 'pads') ?? [0, 0, 0, 0])) return 'other';
  return type;
}

/**
 * Checks on the graph that `module` can become one FCM node. Rules (src/planner/candidates.ts states the same
 * for DAGs, both from fusion-rules.ts): exactly two Conv nodes named by the module, of the module's kind (PW:
 * 1x1, stride 1, no pad, group 1; DW: group = channels); the first one's output, through what mayStandBetween
 * allows (a zero spatial Pad before a DW), has the second as its only consumer, as its data input, and no
 * tensor on the way is a graph output; the first has no residual;
 * and no path from the first leaves the module and comes back into the second (no cycle).
 * Throws an FcmError naming the module.
 */
export function matchModule(g: Graph, module: PlanModule, index: number, idx: GraphIndex = indexGraph(g)): FcmMatch {
  const where = `${g.source}: plan module ${index} (${module.kind}, layers ${module.layers.join(', ')})`;
  if (!module.nodes || module.nodes.length === 0) {
    throw invalid(where, 'names no IR nodes: make the plan from the model itself, not from a layer DAG file');
  }
  const { slotOf, consumers, producer } = idx;
  const present = module.nodes.filter((name) => slotOf.has(name)).map((name) => slotOf.get(name)!);
  const convs = present.filter((i) => g.nodes[i].op === 'Conv' && g.nodes[i].domain === '').sort((a, b) => a - b);
  if (convs.length !== 2) {
    const missing = module.nodes.filter((name) => !slotOf.has(name));
    throw invalid(where, `expected 2 Conv nodes among [${module.nodes.join(', ')}], found ${convs.length}${missing.length ? `; not in the graph: ${missing.join(', ')} (a plan for another graph, or stale)` : ''}`);
  }
  const [i1, i2] = convs;
  const c1 = g.nodes[i1];
  const c2 = g.nodes[i2];
  const role2 = convRole(g, c2);
  const kind = fcmKind(convRole(g, c1), role2);
  if (kind !== module.kind) {
    throw invalid(where, `nodes '${c1.name}' and '${c2.name}' form ${kind ?? 'no FCM'} (PW: 1x1 stride 1 unpadded, DW: one filter per channel), not ${module.kind}`);
  }
  if ((c1.inputs[3] ?? '') !== '') throw invalid(where, `node '${c1.name}' adds a residual: only the second layer of an FCM may`);

  const outputs = idx.outputs;
  const t1 = c1.outputs[0];
  let link = t1;
  let pad: number | undefined;
  let extra: number[] | undefined;
  const links: ChainLink[] = [];
  for (;;) {
    if (outputs.has(link)) throw invalid(where, `tensor '${link}' between '${c1.name}' and '${c2.name}' is a graph output`);
    const cons = consumers.get(link) ?? [];
    if (cons.length === 1 && cons[0] === i2) break;
    const n = cons.length === 1 ? g.nodes[cons[0]] : undefined;
    const step: ChainLink = n?.op === 'Pad' && n.inputs[0] === link && n.outputs.length === 1 ? { kind: 'pad', pads: spatialZeroPads(g, n) } : { kind: 'other' };
    if (!n || step.kind !== 'pad' || !mayStandBetween(links, step, role2 as ConvType)) {
      const names = cons.map((i) => `'${g.nodes[i].name}'`).join(', ');
      throw invalid(where, `tensor '${link}' has consumers [${names}]; an FCM needs '${c2.name}' as its only consumer (or one zero spatial Pad before a DW)`);
    }
    links.push(step);
    pad = cons[0];
    extra = step.pads;
    link = n.outputs[0];
  }
  if (c2.inputs[0] !== link || c2.inputs.slice(1).includes(link)) {
    throw invalid(where, `tensor '${link}' must be only the data input of '${c2.name}'`);
  }
  // No cycle: the second conv's other inputs must not be computed from the first conv's output.
  for (const x of c2.inputs.slice(1)) {
    if (x && dependsOnNode(g, producer, x, i1, idx.topological)) {
      throw invalid(where, `input '${x}' of '${c2.name}' is computed from '${c1.name}': fusing them would create a cycle`);
    }
  }
  const m: FcmMatch = { conv1: i1, conv2: i2 };
  if (pad !== undefined) {
    const own = attrInts(g, c2, 'pads') ?? [0, 0, 0, 0];
    // IR pads are [top, left, bottom, right], as are the Pad's spatial ones here.
    m.pad = pad;
    m.dwPads = own.map((p, k) => p + extra![k]);
  }
  return m;
}

/**
 * Lookups matchModule needs, made once per graph (applyPlan matches every module against the same graph): made per
 * module they cost O(nodes) each, and a plan of a 20,000-conv chain took minutes.
 */
export interface GraphIndex {
  /** Node name -> slot. */
  slotOf: Map<string, number>;
  /** Tensor -> slots of the nodes reading it, ascending, each once. */
  consumers: Map<string, number[]>;
  /** Tensor -> slot of the node writing it. */
  producer: Map<string, number>;
  outputs: Set<string>;
  /** Every node's inputs are written by earlier slots (or by none): a node can then only depend on earlier slots. */
  topological: boolean;
}

export function indexGraph(g: Graph): GraphIndex {
  const slotOf = new Map<string, number>();
  const consumers = new Map<string, number[]>();
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => {
    slotOf.set(n.name, i);
    for (const x of n.inputs) {
      const list = consumers.get(x);
      if (!list) consumers.set(x, [i]);
      else if (list[list.length - 1] !== i) list.push(i);
    }
    n.outputs.forEach((y) => y && producer.set(y, i));
  });
  const topological = g.nodes.every((n, i) => n.inputs.every((x) => (producer.get(x) ?? -1) < i));
  return { slotOf, consumers, producer, outputs: new Set(g.outputs), topological };
}

function dependsOnNode(g: Graph, producer: Map<string, number>, t: string, target: number, topological: boolean): boolean {
  const seen = new Set<number>();
  const stack = [t];
  while (stack.length > 0) {
    const p = producer.get(stack.pop()!);
    if (p === undefined || seen.has(p)) continue;
    if (p === target) return true;
    // In topological order nothing before the target is computed from it: the walk stays between the two convs.
    if (topological && p < target) continue;
    seen.add(p);
    for (const x of g.nodes[p].inputs) if (x) stack.push(x);
  }
  return false;
}

function tileOf(where: string, v: number | undefined, name: string): number {
  if (v === undefined || !Number.isInteger(v) || v < 1) throw invalid(where, `tile '${name}' must be a positive integer, got ${v}`);
  return v;
}

/** Replaces every fused module of `plan` by one FCM node; lone modules leave their layers as they are. */
export function applyPlan(g0: Graph, plan: Plan): Graph {
  const g = fuseEpilogues(g0);
  const slots: (Node | null)[] = [...g.nodes];
  const claimed = new Set<number>();
  const names = new Set(g.nodes.map((n) => n.name));
  const idx = indexGraph(g);
  const fused: { slot: number; node: Node }[] = [];
  const dropped: string[] = [];
  plan.modules.forEach((module, index) => {
    const op = fcmOps[module.kind];
    if (!op) return;
    const where = `${g.source}: plan module ${index} (${module.kind}, layers ${module.layers.join(', ')})`;
    const m = matchModule(g, module, index, idx);
    for (const s of [m.conv1, m.conv2, m.pad]) {
      if (s === undefined) continue;
      if (claimed.has(s)) throw invalid(where, `node '${g.nodes[s].name}' is already in another fused module`);
      claimed.add(s);
    }
    const c1 = g.nodes[m.conv1];
    const c2 = g.nodes[m.conv2];
    // A channel scale (input 4: a squeeze-excite Mul folded in by src/rewrite/channel-scale.ts) has no place in an
    // FCM node: plan the graph before the fold.
    for (const c of [c1, c2]) if (c.inputs[4]) throw unsupported(where, `node '${c.name}' reads a channel scale '${c.inputs[4]}' (a folded squeeze-excite Mul); fused modules take none: plan the graph before folding`);
    const dw = module.kind === 'pwdw' ? c2 : module.kind === 'dwpw' ? c1 : undefined;
    const t = module.tiles;
    const attrs = newAttrs();
    if (dw) {
      for (const k of ['strides', 'pads', 'kernel', 'dilations']) {
        const v = dw.attrs[k];
        if (v !== undefined) attrs[k] = Array.isArray(v) ? ([...v] as AttrValue) : v;
      }
      if (dw === c2 && m.dwPads) attrs.pads = m.dwPads;
    }
    for (const [node, suffix] of [[c1, '1'], [c2, '2']] as const) {
      const act = node.attrs.activation;
      if (act === undefined) continue;
      attrs[`activation${suffix}`] = act;
      const params = node.attrs.activationParams;
      if (params !== undefined) attrs[`activationParams${suffix}`] = Array.isArray(params) ? ([...params] as AttrValue) : params;
    }
    // DW-PW: the kernel walks the depthwise channels in steps of tileFilters1 (kernels/fused-dwpw.ts), which
    // is the planner's depth step; the other FCMs take the first layer's filters per tile.
    attrs.tileFilters1 = tileOf(where, module.kind === 'dwpw' ? t.d ?? t.l1Filters : t.l1Filters, 'l1Filters');
    attrs.tileFilters2 = tileOf(where, t.l2Filters, 'l2Filters');
    attrs.tileH = tileOf(where, t.h, 'h');
    attrs.tileW = tileOf(where, t.w, 'w');
    attrs.layer1 = c1.name;
    attrs.layer2 = c2.name;
    // The intermediate tensor is deleted below, but an integer FCM requantizes to its 8-bit grid as the first
    // layer would store it (kernels/int8/fused.ts): keep its per-tensor quantization on the node.
    const mid = g.tensors.get(c1.outputs[0])?.quant;
    if (mid && mid.scale.length === 1) {
      attrs.intermediateScale = mid.scale[0];
      attrs.intermediateZeroPoint = mid.zeroPoint[0] ?? 0;
    }
    let name = `${c1.name}+${c2.name}`;
    for (let k = 1; names.has(name); k++) name = `${c1.name}+${c2.name}_${k}`;
    names.add(name);
    const node: Node = {
      name,
      op,
      domain: fcmDomain,
      inputs: [c1.inputs[0], c1.inputs[1], c1.inputs[2] ?? '', c2.inputs[1], c2.inputs[2] ?? '', c2.inputs[3] ?? ''],
      outputs: [...c2.outputs],
      attrs,
    };
    // Deleted only at the end: later modules are matched against the unchanged graph.
    dropped.push(c1.outputs[0]);
    if (m.pad !== undefined) {
      dropped.push(g.nodes[m.pad].outputs[0]);
      slots[m.pad] = null;
    }
    slots[m.conv1] = null;
    fused.push({ slot: m.conv2, node });
  });
  for (const f of fused) slots[f.slot] = f.node;
  for (const t of dropped) g.tensors.delete(t);
  g.nodes = slots.filter((n): n is Node => n !== null);
  return g;
}
