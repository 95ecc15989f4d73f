// FusePlanner's layer DAG (`model_dag.json`, src/planner/dag.ts) for a graph from any importer, after
// prepareGraph. One layer per IR node in topological order, except that an activation which fuseEpilogues
// folds into the conv before it is folded into that conv's layer (`activation`, and both node names in
// `nodes`), as the FusePlanner reference's TFLite DAGs carry fused activations: the rule is src/planner/fusion-rules.ts
// foldedActivation, which the rewrite applies too, so the DAG's layers are the rewrite's nodes. Layers whose
// output the model returns carry `model_output: true` (the planner fuses none through them). Conv layers are typed as the
// FusePlanner reference's utils.py reads them (is_conv_layer, get_layer_filter_size...): 's', 'dw', 'pw' with [C, H, W]
// shapes of batch item 0; 'fc' for Gemm/MatMul with a constant weight.
import { unsupported } from '../errors.js';
import type { Graph, Node, Tensor } from '../graph/ir.js';
import { consumers, isKnownOp, numel, producers } from '../graph/ir.js';
import { axisField, type ConvType, type Dag, type DagLayer } from './dag.js';
import { convType, epilogueActivationOps, foldedActivation, spatialZeroPads } from './fusion-rules.js';

/** The FusePlanner reference's activation spelling: '0', 'RELU', 'RELU6' (Clip 0..6), else the op name upper-cased. */
export function activationName(op: string, min?: unknown, max?: unknown): string {
  if (op === 'Clip') return min === 0 && max === 6 ? 'RELU6' : 'CLIP';
  return op.toUpperCase();
}

export function toDag(g: Graph): Dag {
  const cons = consumers(g);
  const prod = producers(g);
  const shape = (name: string): number[] | null => {
    const t = g.tensors.get(name);
    return t && !t.shapeUnknown ? t.shape : null;
  };

  // Which nodes become conv layers, and which activation each absorbs.
  const kinds = g.nodes.map((n) => convKind(g, n));
  const outputs = new Set(g.outputs);
  const absorbedBy = new Map<number, number>(); // activation node index -> conv node index
  g.nodes.forEach((n, i) => {
    if (!kinds[i]) return;
    const readers = cons.get(n.outputs[0]) ?? [];
    if (readers.length === 1 && foldedActivation(g, n, g.nodes[readers[0]], readers.length, outputs)) absorbedBy.set(readers[0], i);
  });

  const layerOfNode = new Map<number, number>();
  const layers: DagLayer[] = [];
  g.nodes.forEach((n, i) => {
    const conv = absorbedBy.get(i);
    if (conv !== undefined) {
      const layer = layers[layerOfNode.get(conv)!];
      layer.activation = activationName(n.op, n.attrs.min, n.attrs.max);
      layer.nodes!.push(n.name);
      if (outputs.has(n.outputs[0])) layer.model_output = true;
      layerOfNode.set(i, layer.id);
      // The layer's output is now the activation's (same shape).
      return;
    }
    const id = layers.length;
    layerOfNode.set(i, id);
    const layer: DagLayer = { id, name: n.name, op: n.op, parents: [], children: [], activation: '0', ifms_shape: [], ofms_shape: [], nodes: [n.name] };
    const kind = kinds[i];
    if (kind) {
      Object.assign(layer, kind);
      if (typeof n.attrs.activation === 'string') {
        const p = n.attrs.activationParams as number[] | undefined;
        layer.activation = activationName(n.attrs.activation, p?.[0], p?.[1]);
      }
    } else {
      if (isKnownOp(n) && epilogueActivationOps.has(n.op)) layer.activation = activationName(n.op, n.attrs.min, n.attrs.max);
      const x = n.inputs.find((v) => v && !g.tensors.get(v)?.data);
      layer.ifms_shape = x ? [...(shape(x) ?? [])] : [];
      layer.ofms_shape = n.outputs[0] ? [...(shape(n.outputs[0]) ?? [])] : [];
      if (isKnownOp(n) && n.op === 'Pad') {
        // The rewrite folds only zero spatial padding (fusion-rules.ts spatialZeroPads): say which this is.
        const z = spatialZeroPads(g, n);
        const p = n.attrs.pads;
        if (z) Object.assign(layer, { padding_top: z[0], padding_left: z[1], padding_bottom: z[2], padding_right: z[3] });
        else if (Array.isArray(p) && p.length === 8) Object.assign(layer, { padding_top: p[2], padding_left: p[3], padding_bottom: p[6], padding_right: p[7] });
        layer.spatial_zero_pad = z !== undefined;
      }
    }
    const q = (name: string | undefined) => (name ? g.tensors.get(name)?.quant : undefined);
    const qi = q(n.inputs[0]), qo = q(n.outputs[0]);
    if (qi && qi.scale.length === 1) Object.assign(layer, { ifms_scales: qi.scale[0], ifms_zero_points: qi.zeroPoint[0] });
    if (qo && qo.scale.length === 1) Object.assign(layer, { ofms_scales: qo.scale[0], ofms_zero_points: qo.zeroPoint[0] });
    if (n.outputs.some((y) => outputs.has(y))) layer.model_output = true;
    layers.push(layer);
  });

  // Edges over tensors, by layer id, in input order.
  g.nodes.forEach((n, i) => {
    const id = layerOfNode.get(i)!;
    for (const x of n.inputs) {
      const p = x ? prod.get(x) : undefined;
      if (p === undefined) continue;
      const pid = layerOfNode.get(p)!;
      if (pid === id) continue; // an absorbed activation reads its own conv
      if (!layers[id].parents.includes(pid)) layers[id].parents.push(pid);
      if (!layers[pid].children.includes(id)) layers[pid].children.push(id);
    }
  });
  for (const l of layers) l.children.sort((a, b) => a - b);
  return layers;
}

type ConvFields = Pick<DagLayer, 'type' | 'weights_shape' | 'ifms_shape' | 'ofms_shape' | 'strides' | 'pads' | 'dilations'> & { type: ConvType };

/** The conv-layer fields of `n`, or null when it is no conv layer FusePlanner models. */
function convKind(g: Graph, n: Node): ConvFields | null {
  const t = (i: number): Tensor | undefined => (n.inputs[i] ? g.tensors.get(n.inputs[i]) : undefined);
  const y = n.outputs[0] ? g.tensors.get(n.outputs[0]) : undefined;
  const x = t(0), w = t(1);
  if (!x || !w || !y) return null;
  const at = `${g.source}: node '${n.name}' (${n.op})`;
  if (n.op === 'Conv' && n.domain === '') {
    if (w.shape.length !== 4) return null; // 1-D/3-D convolutions: not a FusePlanner layer
    if (x.shapeUnknown || y.shapeUnknown) throw unsupported(at, 'the shape of this convolution is unknown; load the model with loadModel so that onnxruntime resolves it');
    const [, C, H, W] = x.shape, [F, Cg, KH, KW] = w.shape, [, , OH, OW] = y.shape;
    const group = (n.attrs.group as number | undefined) ?? 1;
    const strides = (n.attrs.strides as number[] | undefined) ?? [1, 1];
    const pads = (n.attrs.pads as number[] | undefined) ?? [0, 0, 0, 0];
    const dilations = (n.attrs.dilations as number[] | undefined) ?? [1, 1];
    // One number per field when both axes agree (the FusePlanner reference's form), [H, W] when not (strides [2, 1]).
    const base = { ifms_shape: [C, H, W], ofms_shape: [F, OH, OW], strides: axisField(strides[0], strides[1] ?? strides[0]), pads: [...pads], dilations: axisField(dilations[0], dilations[1] ?? dilations[0]) };
    // A 1x1 convolution with padding writes a larger map than it reads: no pointwise layer in the paper's sense (its
    // cost models and FCMs keep the map), so a standard one.
    const type0 = convType(group, C, F, KH, KW);
    const type = type0 === 'pw' && pads.some((p) => p !== 0) ? 's' : type0;
    if (type === 'dw') return { ...base, type, weights_shape: [C, KH, KW] };
    if (type === 'pw') return { ...base, type, weights_shape: [F, Cg] };
    return { ...base, type, weights_shape: [F, Cg, KH, KW] };
  }
  if ((n.op === 'Gemm' || n.op === 'MatMul') && n.domain === '' && w.data && w.shape.length === 2) {
    if (x.shapeUnknown || y.shapeUnknown) throw unsupported(at, 'the shape of this layer is unknown; load the model with loadModel so that onnxruntime resolves it');
    if (n.op === 'Gemm' && n.attrs.transA) return null;
    const transB = n.op === 'Gemm' && !!n.attrs.transB;
    const [F, C] = transB ? w.shape : [w.shape[1], w.shape[0]];
    // As a 1x1 convolution over `rows` positions: [C, rows, 1] -> [F, rows, 1].
    const rows = x.shape.length >= 2 ? numel(x.shape.slice(1, -1)) : 1;
    return { type: 'fc', weights_shape: [F, C], ifms_shape: [C, rows, 1], ofms_shape: [F, rows, 1], strides: 1 };
  }
  return null;
}
