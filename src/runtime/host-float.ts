// Nodes the float executor runs on the host between GPU passes: ops whose work is data-dependent selection with no
// kernel worth writing (TFLite_Detection_PostProcess: sorting and greedy NMS over a few thousand boxes), and ONNX LSTM
// (a few sequential time steps of a small recurrence: lstm.ts), and MediaPipe's custom ops of its landmark models
// (mediapipe-ops.ts: a 4x4 matrix from a few landmarks, a small crop, a few hundred points). compile.ts makes them host steps; the executor reads
// back what they read, runs them here, and uploads what later dispatches read.
import { invalid } from '../errors.js';
import type { Graph, Node } from '../graph/ir.js';
import { constNumbers, nodeWhere } from '../graph/util.js';
import type { Value } from '../quant/run-reference.js';
import { checkDetectionShapes, detectionParams, detectionPostProcess, detectionPostProcessOp } from './detection-postprocess.js';
import { checkLstmShapes, lstm, lstmParams } from './lstm.js';
import { checkMediapipeNode, isMediapipeOp, runMediapipeNode } from './mediapipe-ops.js';

const isLstm = (n: Node) => n.domain === '' && n.op === 'LSTM';

/** Whether the float executor runs `n` on the host. */
export const runsOnFloatHost = (n: Node): boolean => (n.domain === 'tflite.custom' && n.op === detectionPostProcessOp) || isLstm(n) || isMediapipeOp(n);

const shapeOf = (g: Graph, x: string) => g.tensors.get(x)?.shape ?? [];

/** Checks a host node's attributes and shapes when the schedule is made (exit 2 naming the node). */
export function checkFloatHostNode(g: Graph, n: Node): void {
  if (isLstm(n)) {
    checkLstmShapes(nodeWhere(g, n), lstmParams(g, n), n.inputs.map((x) => (x ? shapeOf(g, x) : undefined)), n.outputs.map((y) => (y ? shapeOf(g, y) : undefined)));
    return;
  }
  if (isMediapipeOp(n)) { checkMediapipeNode(g, n); return; }
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
    const set = (y: string | undefined, data: Float32Array) => { if (y) values.set(y, { data, shape: [...shapeOf(g, y)] }); };
    if (isLstm(n)) {
      const p = lstmParams(g, n);
      const dims = checkLstmShapes(nodeWhere(g, n), p, n.inputs.map((x) => (x ? shapeOf(g, x) : undefined)), n.outputs.map((y) => (y ? shapeOf(g, y) : undefined)));
      const opt = (i: number) => (n.inputs[i] ? read(n.inputs[i]) : undefined);
      const r = lstm(p, dims, read(n.inputs[0]), read(n.inputs[1]), read(n.inputs[2]), opt(3), opt(5), opt(6), opt(7));
      set(n.outputs[0], r.y); set(n.outputs[1], r.yh); set(n.outputs[2], r.yc);
      continue;
    }
    if (isMediapipeOp(n)) { set(n.outputs[0], runMediapipeNode(g, n, read)); continue; }
    const p = detectionParams(g, n);
    const dims = checkDetectionShapes(nodeWhere(g, n), p, n.inputs.map((x) => shapeOf(g, x)), n.outputs.map((y) => shapeOf(g, y)));
    const r = detectionPostProcess(p, read(n.inputs[0]), read(n.inputs[1]), read(n.inputs[2]), dims.numBoxes, dims.boxSize, dims.classesWithBackground);
    const [yb, yc, ys, yn] = n.outputs;
    set(yb, r.boxes); set(yc, r.classes); set(ys, r.scores); set(yn, Float32Array.of(r.count));
    if (n.outputs.length !== 4) throw invalid(nodeWhere(g, n), 'takes 4 outputs');
  }
}
