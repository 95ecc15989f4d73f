// The clean-ups every importer's graph gets, in a fixed order (each pass is Graph -> Graph):
// validate (topological order) -> fold shape constants (inlining the Ifs they decide) -> Ifs on run-time
// conditions as both branches and a select -> constant operands into attributes ->
// drop Identity/Dropout -> fold BatchNormalization into Conv -> per-channel adds into the Conv's bias, chains of
// clamps into one Clip -> recognize spelled-out activations ->
// infer every shape -> 1-D convolutions as 2-D ones -> drop tensors nothing refers to any more.
import type { Graph } from './ir.js';
import { conv1dAs2d } from './passes/conv1d-as-2d.js';
import { foldBatchNorm } from './passes/fold-batchnorm.js';
import { foldBiasAdd, mergeClamps } from './passes/fold-bias-add.js';
import { foldConstants } from './passes/fold-constants.js';
import { selectIfs } from './passes/inline-if.js';
import { normalizeAttrs } from './passes/normalize-attrs.js';
import { recognizeActivations } from './passes/recognize-activations.js';
import { removeIdentity } from './passes/remove-identity.js';
import type { ShapeOptions } from './shape.js';
import { inferShapes } from './shape.js';
import { pruneTensors } from './util.js';
import { validateGraph } from './validate.js';

export function prepareGraph(g: Graph, opts: ShapeOptions = {}): Graph {
  let out = validateGraph(g);
  out = foldConstants(out, opts);
  out = selectIfs(out, foldConstants, opts);
  out = normalizeAttrs(out);
  out = removeIdentity(out);
  out = foldBatchNorm(out);
  out = foldBiasAdd(out);
  out = mergeClamps(out);
  out = recognizeActivations(out);
  out = inferShapes(out, opts);
  out = conv1dAs2d(out);
  return pruneTensors(out);
}
