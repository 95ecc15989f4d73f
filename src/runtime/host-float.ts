// Nodes the float executor runs on the host between GPU passes: ops whose work is data-dependent selection with no
// kernel worth writing (TFLite_Detection_PostProcess: sorting and greedy NMS over a few thousand boxes). compile.ts
// makes them host steps; the executor reads back what they read, runs them here, and uploads what later dispatches read.
import { invalid } from '../errors.js';
import type { Graph, Node } from '../graph/ir.js';
import { constNumbers, nodeWhere } from '../graph/util.js';
import type { Value } from '../quant/run-reference.js';
import { checkDetectionShapes, detectionParams, detectionPostProcess, detectionPostProcessOp } from './detection-postprocess.js';

/** Whether the float executor runs `n` on the host. */
export const runsOnFloatHost = (n: Node): boolean => n.domain === 'tflite.custom' && n.op === detectionPostProcessOp;

const shapeOf = (g: Graph, x: string) => g.tensors.get(x)?.shape ?? [];

/** Checks a host node's attributes and shapes when the schedule is made (exit 2 naming the node). */
export function checkFloatHostNode(g: Graph, n: Node): void {
  checkDetectionShapes(nodeWhere(g, n), detectionParams(g, n), n.inputs.map((x) => shapeOf(g, x)), n.outputs.map((y) => shapeOf(g, y)));
}

/** Runs host nodes in order, reading `values` (or constants) and adding their outputs (`root`: the tensor an alias reads). */
export function runFloatHost(g: Graph, values: Map<string, Value>, nodes: readonly Node[], root: (t: string) => string): void {
  for (const n of nodes) {
    if (!runsOnFloatHost(n)) throw new Error(`internal: ${g.source}: node '${n.name}' (${n.op}) has no host implementation`);
    const read = (x: string): ArrayLike<number> => {
      const t = g.tensors.get(x);
      if (t?.data !== undefined) return t.data instanceof Float32Array ? t.data : constNumbers(t, nodeWhere(g, n));
      const v = values.get(x) ?? values.get(root(x));
      if (!v) throw new Error(`internal: host step needs '${x}', which has no value`);
      return v.data as ArrayLike<number>;
    };
    const p = detectionParams(g, n);
    const dims = checkDetectionShapes(nodeWhere(g, n), p, n.inputs.map((x) => shapeOf(g, x)), n.outputs.map((y) => shapeOf(g, y)));
    const r = detectionPostProcess(p, read(n.inputs[0]), read(n.inputs[1]), read(n.inputs[2]), dims.numBoxes, dims.boxSize, dims.classesWithBackground);
    const [yb, yc, ys, yn] = n.outputs;
    const set = (y: string, data: Float32Array) => { if (y) values.set(y, { data, shape: [...shapeOf(g, y)] }); };
    set(yb, r.boxes); set(yc, r.classes); set(ys, r.scores); set(yn, Float32Array.of(r.count));
    if (n.outputs.length !== 4) throw invalid(nodeWhere(g, n), 'takes 4 outputs');
  }
}
