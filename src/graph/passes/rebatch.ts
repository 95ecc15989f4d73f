// The same graph at a smaller batch: what a session split into sub-batches runs (src/runtime/sub-batch.ts). A graph of
// static shapes at batch B becomes the graph at batch b (b dividing B) by giving its inputs the first dimension b and
// inferring every shape again; a Reshape whose constant target keeps the batch first ([B, -1]: PyTorch's
// `x.view(x.size(0), -1)` folded at a fixed batch) gets target [b, ...].
//
// Running the batch as B/b inferences of b images and laying their outputs side by side is the batch's result only
// where no node mixes images. The check, on every tensor computed from an input (weights and what is computed from them
// alone do not depend on the batch): its first dimension is the batch (B before, b after, the other dimensions the
// same), so that each image's values are one contiguous slice of it; and no node that reads such a tensor works along
// axis 0 (a Softmax, Concat, Split, Gather or reduction over the batch axis, a Transpose moving it, a matrix product
// whose right operand is one, Gemm with transA). Ops outside the IR's list (opaque) are refused: what they do along
// axis 0 is unknown. Refusals are FcmError unsupported (exit 3) naming the node or tensor.

import { FcmError, unsupported } from '../../errors.js';
import type { Graph, Node, Tensor } from '../ir.js';
import { fcmDomain, isKnownOp } from '../ir.js';
import { inferShapes } from '../shape.js';
import { cloneGraph, nodeWhere, tensorWhere } from '../util.js';

/** The batch of `g`: the first dimension every input shares (undefined: an input of rank 0, or inputs disagreeing). */
export function commonBatch(g: Pick<Graph, 'inputs' | 'tensors'>): number | undefined {
  let batch: number | undefined;
  for (const x of g.inputs) {
    const s = g.tensors.get(x)?.shape;
    if (!s?.length) return undefined;
    if (batch !== undefined && s[0] !== batch) return undefined;
    batch = s[0];
  }
  return batch;
}

const axisOf = (a: number, rank: number) => (a < 0 ? a + rank : a);

/** Ops whose `axis` is 0 when the attribute is absent (ONNX defaults). */
const axisZeroByDefault = new Set(['Split', 'Gather', 'GatherElements', 'ScatterElements', 'ArgMax', 'ArgMin']);
/** Ops whose `axis` indexes their first operand only (a table looked up with indices computed from the input is fine). */
const axisOfData = new Set(['Gather', 'GatherElements']);

/** Why node `n` (reading batch tensors `fromInput`) may mix the images of a batch, or undefined. */
function mixesImages(g: Graph, n: Node, fromInput: ReadonlySet<string>): string | undefined {
  if (!isKnownOp(n) && n.domain !== fcmDomain) return `'${n.op}' is an op whose work along the batch axis is not known`;
  const rank = g.tensors.get(n.inputs.find((x) => x && fromInput.has(x))!)?.shape.length ?? 0;
  const axis = n.attrs.axis ?? (axisZeroByDefault.has(n.op) ? 0 : undefined);
  const onData = !axisOfData.has(n.op) || fromInput.has(n.inputs[0]);
  if (typeof axis === 'number' && onData && axisOf(axis, rank) === 0) return `works along axis ${axis}, the batch axis`;
  const axes = n.attrs.axes;
  if (Array.isArray(axes) && (axes as number[]).some((a) => axisOf(a, rank) === 0)) return `works along axes [${(axes as number[]).join(',')}], which hold the batch axis`;
  const perm = n.attrs.perm;
  if (n.op === 'Transpose' && Array.isArray(perm) && perm[0] !== 0) return `moves the batch axis (perm [${(perm as number[]).join(',')}])`;
  if ((n.op === 'MatMul' || n.op === 'Gemm') && n.inputs[1] && fromInput.has(n.inputs[1])) return 'multiplies by a matrix computed from the input';
  if (n.op === 'Gemm' && n.attrs.transA && fromInput.has(n.inputs[0])) return 'transposes its batch operand (transA)';
  return undefined;
}

/**
 * `g` (static shapes, every input's first dimension B) at batch `batch` (dividing B). Throws unsupported where the
 * batch cannot be split: an input without that first dimension, a node that may mix images, or a shape that does not
 * follow the batch.
 */
export function rebatchGraph(g: Graph, batch: number): Graph {
  const B = commonBatch(g);
  if (B === undefined) {
    const x = g.inputs.find((i) => !g.tensors.get(i)?.shape.length) ?? g.inputs[1] ?? g.inputs[0];
    throw unsupported(tensorWhere(g, x), `the inputs do not share a first (batch) dimension (${g.inputs.map((i) => `[${g.tensors.get(i)?.shape.join(',')}]`).join(', ')}): the batch cannot be split`);
  }
  if (!Number.isInteger(batch) || batch < 1 || B % batch !== 0) throw unsupported(g.source, `batch ${B} does not split into sub-batches of ${batch}`);
  const k = B / batch;
  // Tensors computed from an input.
  const fromInput = new Set(g.inputs);
  const out = cloneGraph(g);
  for (const n of out.nodes) {
    if (!n.inputs.some((x) => x && fromInput.has(x))) continue;
    const why = mixesImages(g, n, fromInput);
    if (why) throw unsupported(nodeWhere(g, n), `${why}: the batch cannot be split`);
    for (const y of n.outputs) if (y) fromInput.add(y);
    if (n.op === 'Reshape' && Array.isArray(n.attrs.shape)) {
      const target = n.attrs.shape as number[];
      const inShape = g.tensors.get(n.inputs[0])?.shape;
      if (target[0] === B && inShape?.[0] === B) n.attrs.shape = [batch, ...target.slice(1)];
    }
  }
  for (const x of out.inputs) {
    const t = out.tensors.get(x)!;
    out.tensors.set(x, { ...t, shape: [batch, ...t.shape.slice(1)] });
  }
  let rebatched: Graph;
  try {
    rebatched = inferShapes(out);
  } catch (e) {
    // A shape fixed at batch B elsewhere (a Reshape to [B*C]) fails at batch b: the batch cannot be split there.
    if (!(e instanceof FcmError)) throw e;
    throw unsupported(g.source, `at batch ${batch}: ${e.message}: the batch cannot be split`);
  }
  for (const name of fromInput) {
    const was = g.tensors.get(name), now = rebatched.tensors.get(name);
    if (!was || !now) continue;
    if (!followsBatch(was, now, k)) {
      throw unsupported(tensorWhere(g, name), `shape [${was.shape.join(',')}] at batch ${B} is [${now.shape.join(',')}] at batch ${batch}: its first dimension is not the batch, so the batch cannot be split`);
    }
  }
  return rebatched;
}

function followsBatch(was: Tensor, now: Tensor, k: number): boolean {
  if (was.shapeUnknown || now.shapeUnknown || !was.shape.length || was.shape.length !== now.shape.length) return false;
  return now.shape[0] * k === was.shape[0] && now.shape.every((d, i) => i === 0 || d === was.shape[i]);
}
