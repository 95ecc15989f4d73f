// Newer opsets pass some operands as inputs (Clip min/max, Pad pads/value/axes, Slice starts/ends/axes/
// steps, ReduceMean axes, Reshape shape, Split split, Squeeze/Unsqueeze axes). Once they are constants,
// move them into the canonical attributes of ir.ts so passes, planner and kernels read one form.
// An operand computed at run time stays an input (the node keeps its input form).
import { invalid } from '../../errors.js';
import type { Graph, Node } from '../ir.js';
import { isKnownOp } from '../ir.js';
import { expandPads } from '../shape.js';
import { cloneGraph, constNumbers, nodeWhere } from '../util.js';

/** Operand inputs per op: [input index, attribute name]. */
const operandInputs: Record<string, Array<[number, string]>> = {
  Clip: [[1, 'min'], [2, 'max']],
  Pad: [[1, 'pads'], [2, 'value'], [3, 'axes']],
  Slice: [[1, 'starts'], [2, 'ends'], [3, 'axes'], [4, 'steps']],
  ReduceMean: [[1, 'axes']],
  Reshape: [[1, 'shape']],
  Split: [[1, 'split']],
  Squeeze: [[1, 'axes']],
  Unsqueeze: [[1, 'axes']],
};
const scalarAttrs = new Set(['min', 'max', 'value']);

export function normalizeAttrs(g0: Graph): Graph {
  const g = cloneGraph(g0);
  for (const n of g.nodes) {
    if (n.domain === '' && n.op === 'Resize') resizeScales(g, n);
    if (n.domain === '' && n.op === 'Gather') gatherIndices(g, n);
    if (n.domain === '' && opaqueReductions.has(n.op)) reductionAxes(g, n);
    if (!isKnownOp(n)) continue;
    const operands = operandInputs[n.op];
    if (operands) moveOperands(g, n, operands);
    fillDefaults(g, n);
  }
  return g;
}

function moveOperands(g: Graph, n: Node, operands: Array<[number, string]>) {
  const where = nodeWhere(g, n);
  // All or nothing: a node half in input form would be read wrongly by both conventions.
  for (const [i] of operands) {
    const x = n.inputs[i];
    if (x && g.tensors.get(x)?.data === undefined) return;
  }
  for (const [i, attr] of operands) {
    const x = n.inputs[i];
    if (!x) continue;
    const v = constNumbers(g.tensors.get(x)!, where, n.op === 'Slice');
    if (scalarAttrs.has(attr)) {
      if (v.length !== 1) throw invalid(where, `operand '${attr}' ('${x}') must be a scalar, has ${v.length} values`);
      n.attrs[attr] = v[0];
    } else {
      n.attrs[attr] = v;
    }
  }
  n.inputs = [n.inputs[0]];
}

/**
 * Gather of a tensor computed at run time with constant indices (Silero VAD's LSTM state: state[0], state[1]): the
 * indices are copied into the attribute `indices` for the kernel (kernels/gather.ts). The input stays, so the node is
 * still a valid ONNX Gather when exported; Gathers of constants were folded before.
 */
function gatherIndices(g: Graph, n: Node) {
  const t = n.inputs[1] ? g.tensors.get(n.inputs[1]) : undefined;
  if (!t || t.data === undefined) return;
  n.attrs.indices = constNumbers(t, nodeWhere(g, n));
}

/**
 * Resize (opaque to the IR, run by kernels/resize.ts): constant scales are copied into the attribute `scales` for
 * the kernel, which sees shapes only. The inputs stay, so the node is still a valid ONNX Resize when exported.
 */
function resizeScales(g: Graph, n: Node) {
  const x = n.inputs[2];
  const t = x ? g.tensors.get(x) : undefined;
  if (!t?.data || t.data.length === 0) return;
  n.attrs.scales = constNumbers(t, nodeWhere(g, n), true);
}

/** Reductions the IR does not know (run by kernels/reduce.ts) whose axes may be an input (opsets 13 and 18). */
const opaqueReductions = new Set(['ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd']);

/** A constant axes input is copied into the attribute `axes` for the kernel; the input stays, as for Resize. */
function reductionAxes(g: Graph, n: Node) {
  const x = n.inputs[1];
  const t = x ? g.tensors.get(x) : undefined;
  if (!t?.data) return;
  n.attrs.axes = constNumbers(t, nodeWhere(g, n));
}

function fillDefaults(g: Graph, n: Node) {
  const a = n.attrs;
  const where = nodeWhere(g, n);
  switch (n.op) {
    case 'Clip':
      if (n.inputs.length > 1) return;
      if (a.min === undefined) a.min = -Infinity;
      if (a.max === undefined) a.max = Infinity;
      return;
    case 'Pad': {
      if (n.inputs.length > 1) return;
      if (a.mode === undefined) a.mode = 'constant';
      if (a.value === undefined) a.value = 0;
      if (a.axes !== undefined) {
        const t = g.tensors.get(n.inputs[0]);
        if (!t || t.shapeUnknown) return; // expanded once the rank is known
        a.pads = expandPads(a.pads as number[], a.axes as number[], t.shape.length, where);
        delete a.axes;
      }
      return;
    }
    case 'Slice': {
      if (n.inputs.length > 1) return;
      const starts = a.starts as number[] | undefined;
      if (!starts) return;
      if (a.axes === undefined || (a.axes as number[]).length === 0) a.axes = starts.map((_, i) => i);
      if (a.steps === undefined || (a.steps as number[]).length === 0) a.steps = starts.map(() => 1);
      return;
    }
    case 'ReduceMean':
      if (n.inputs.length > 1) return;
      if (a.axes === undefined) a.axes = [];
      if (a.keepdims === undefined) a.keepdims = 1;
      return;
  }
}
