// Sparse TFLite constants (SparsityParameters) expanded to dense ones at import, as TFLite's DENSIFY op does
// (tensorflow/lite/kernels/internal/utils/sparsity_format_converter.cc, FormatConverter::SparseToDense).
//
// A sparse tensor of dense shape (d0, ..., dn-1), with an optional k-dimensional block (block_map names the
// dense dimension each block dimension splits), is stored in n + k levels taken in `traversal_order`: the
// first n a permutation of the (blocked) dense dimensions, the last k the block dimensions. A DENSE level
// has `dense_size` positions; a SPARSE_CSR level lists, for each position of the level above, the indices
// it stores (`array_segments` slices `array_indices`, like a CSR matrix's row pointers and column indices).
// The buffer holds the stored values in that traversal order. Walking the levels gives, for each stored
// value, its position in the dense tensor; every other position is 0.
//
// Unlike the TFLite kernel, which trusts the file, every index is checked against the level it indexes and must
// increase within its segment, so a malformed file is refused (exit 2) instead of writing outside the tensor, and
// the walk visits at most as many positions per level as the dense tensor has.

import { invalid, unsupported } from '../../src/errors.js';
import type { TensorData } from '../../src/graph/ir.js';
import {
  DimensionType, Int32Vector, SparseIndexVector, type SparsityParameters, Uint16Vector, Uint8Vector,
} from './schema_generated.js';

/** One level of the traversal: its size and, for SPARSE_CSR, its segments and indices. */
interface Level {
  size: number;
  sparse?: { segments: Int32Array; indices: Int32Array };
}

/** A validated sparse layout: where each stored value goes in the dense tensor. */
export interface SparseLayout {
  /** Number of values the buffer stores. */
  stored: number;
  /** Row-major position in the dense tensor of each stored value, in buffer order. */
  positions: Float64Array;
}

/** An index vector of the union (int32, uint16 or uint8 values) as int32, read element by element (the file
 *  need not align them for typed views). `get` is the generated union accessor. */
function indexVector(type: SparseIndexVector, get: (obj: unknown) => unknown, what: string, at: string): Int32Array {
  let t: Int32Vector | Uint16Vector | Uint8Vector | null;
  switch (type) {
    case SparseIndexVector.Int32Vector: t = get(new Int32Vector()) as Int32Vector | null; break;
    case SparseIndexVector.Uint16Vector: t = get(new Uint16Vector()) as Uint16Vector | null; break;
    case SparseIndexVector.Uint8Vector: t = get(new Uint8Vector()) as Uint8Vector | null; break;
    case SparseIndexVector.NONE: throw invalid(at, `${what} is missing`);
    default: throw invalid(at, `${what} has index vector type ${type}; expected Int32Vector, Uint16Vector or Uint8Vector`);
  }
  if (!t) throw invalid(at, `${what} is missing`);
  const n = t.valuesLength();
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = t.values(i)!;
  return out;
}

/**
 * Checks `sp` against the dense shape (TFLite's order: NHWC for rank 4) and returns where each stored value
 * goes. `at` names the tensor in messages. The walk stops at the dense element count.
 */
export function sparseLayout(sp: SparsityParameters, shape: readonly number[], at: string): SparseLayout {
  const n = shape.length;
  const k = sp.blockMapLength();
  const order: number[] = [];
  for (let i = 0; i < sp.traversalOrderLength(); i++) order.push(sp.traversalOrder(i)!);
  const blockMap: number[] = [];
  for (let i = 0; i < k; i++) blockMap.push(sp.blockMap(i)!);
  if (order.length !== n + k) throw invalid(at, `sparsity traversal_order has ${order.length} entries; a rank-${n} tensor with ${k} block dimensions needs ${n + k}`);
  if (sp.dimMetadataLength() !== n + k) throw invalid(at, `sparsity dim_metadata has ${sp.dimMetadataLength()} entries; traversal_order has ${n + k}`);
  const isPerm = (xs: number[], lo: number) => xs.every((v) => Number.isInteger(v) && v >= lo && v < lo + xs.length) && new Set(xs).size === xs.length;
  if (!isPerm(order.slice(0, n), 0) || !isPerm(order.slice(n), n)) {
    throw invalid(at, `sparsity traversal_order [${order.join(', ')}] must permute dimensions 0..${n - 1}, then block dimensions ${n}..${n + k - 1}`);
  }
  if (!blockMap.every((d) => d >= 0 && d < n) || new Set(blockMap).size !== k) {
    throw invalid(at, `sparsity block_map [${blockMap.join(', ')}] must name distinct dimensions of 0..${n - 1}`);
  }

  // Block sizes come from the block levels' dense sizes (TFLite stores block dimensions dense).
  const blockSize = new Array<number>(k).fill(0);
  const levels: Level[] = [];
  for (let level = 0; level < n + k; level++) {
    const dm = sp.dimMetadata(level)!;
    const what = `sparsity level ${level}`;
    if (dm.format() === DimensionType.DENSE) {
      levels.push({ size: dm.denseSize() });
    } else if (dm.format() === DimensionType.SPARSE_CSR) {
      if (level >= n) throw unsupported(at, `${what} is a sparse block dimension; TFLite stores block dimensions dense`);
      const segments = indexVector(dm.arraySegmentsType(), (o) => dm.arraySegments(o), `${what} array_segments`, at);
      const indices = indexVector(dm.arrayIndicesType(), (o) => dm.arrayIndices(o), `${what} array_indices`, at);
      levels.push({ size: -1, sparse: { segments, indices } });
    } else {
      throw invalid(at, `${what} has format ${dm.format()}; expected DENSE or SPARSE_CSR`);
    }
    if (level >= n) {
      const size = levels[level].size;
      if (!(size > 0)) throw invalid(at, `${what} (a block dimension) has dense_size ${size}`);
      blockSize[order[level] - n] = size;
    }
  }
  // The size of each level: a dense dimension, divided by its block size when blocked.
  for (let level = 0; level < n; level++) {
    const d = order[level];
    const j = blockMap.indexOf(d);
    const size = j < 0 ? shape[d] : shape[d] / blockSize[j];
    if (!Number.isInteger(size)) throw invalid(at, `dimension ${d} (${shape[d]}) is not a multiple of its block size ${blockSize[j]}`);
    const l = levels[level];
    if (!l.sparse && l.size !== size) throw invalid(at, `sparsity level ${level} has dense_size ${l.size}; dimension ${d} gives ${size}`);
    l.size = size;
  }

  // Walk the levels as TFLite's Populate does, recording the dense position of each stored value.
  const total = shape.reduce((a, b) => a * b, 1);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const positions: number[] = [];
  const idx = new Array<number>(n + k).fill(0);
  const origIdx = new Array<number>(n).fill(0);
  const walk = (level: number, prev: number): void => {
    if (level === n + k) {
      for (let i = 0; i < n; i++) origIdx[order[i]] = idx[i];
      for (let i = n; i < n + k; i++) {
        const b = order[i] - n;
        const d = blockMap[b];
        origIdx[d] = origIdx[d] * blockSize[b] + idx[i];
      }
      let p = 0;
      for (let i = 0; i < n; i++) p += origIdx[i] * strides[i];
      if (positions.length >= total) throw invalid(at, `sparse tensor stores more values than its dense shape [${shape.join(', ')}] holds`);
      positions.push(p);
      return;
    }
    const l = levels[level];
    if (!l.sparse) {
      for (let i = 0; i < l.size; i++) {
        idx[level] = i;
        walk(level + 1, prev * l.size + i);
      }
      return;
    }
    const { segments, indices } = l.sparse;
    if (prev + 1 >= segments.length) throw invalid(at, `sparsity level ${level}: array_segments has ${segments.length} entries, position ${prev} needs ${prev + 2}`);
    const lo = segments[prev], hi = segments[prev + 1];
    if (lo < 0 || hi < lo || hi > indices.length) throw invalid(at, `sparsity level ${level}: segment [${lo}, ${hi}) of position ${prev} lies outside array_indices (${indices.length} entries)`);
    for (let i = lo; i < hi; i++) {
      const v = indices[i];
      if (v < 0 || v >= l.size) throw invalid(at, `sparsity level ${level}: index ${v} is outside its dimension of size ${l.size}`);
      // Increasing within a segment (as TFLite writes them): no position twice, and the walk stays within the dense size.
      if (i > lo && v <= indices[i - 1]) throw invalid(at, `sparsity level ${level}: indices of position ${prev} do not increase (${indices[i - 1]}, then ${v})`);
      idx[level] = v;
      walk(level + 1, i);
    }
  };
  walk(0, 0);
  return { stored: positions.length, positions: Float64Array.from(positions) };
}

/** The dense tensor (row-major over the dense shape, the stored values' array type) of `values` stored in
 *  `layout`; every other position 0. */
export function densify(values: TensorData, layout: SparseLayout, total: number): TensorData {
  const dense = new (values.constructor as new (n: number) => TensorData)(total) as { [i: number]: number | bigint };
  for (let i = 0; i < layout.stored; i++) dense[layout.positions[i]] = values[i];
  return dense as TensorData;
}
