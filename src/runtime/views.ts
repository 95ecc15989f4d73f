// Blocks of one buffer instead of copies: where a Concat's output is one block per input, or a constant-mode Pad's
// output is its input between two constant blocks (every dimension before the axis is 1: the channels at batch 1, or
// the batch axis), the layer that computes an input writes it straight into its block of the output's buffer, bound
// at the block's byte offset, and the copy is not run (kernels/concat.ts: one dispatch per input; kernels/pad.ts: one
// dispatch). Constant blocks (a Concat's constant input, a Pad's fill) are written once, when the session is made, into
// a buffer the output then keeps to itself for the whole run. Inception's mixed blocks, SSD's and BlazeFace's heads and
// FPN-style decoders hold many Concat copies; BlazeFace and MediaPipe's detectors pad channels with zeros before each
// residual add (TFLite PAD, or Barracuda's concat(x, zeros)). Each was a dispatch of pure data movement.
//
// Legality, per computed block (its alias root `r`), all of:
//   - the node is plain ONNX on the float kernels; a Pad is mode constant with pads on one axis only, none negative;
//   - every dimension of the output before the axis is 1;
//   - `r` is written by a dispatch: not a graph input, not a constant, not written or read by a host step, not a graph
//     output (those are fed and read back from buffers of their own), not the node's output, not already a view, not
//     an output holding constant blocks, and listed once in the node; a Concat's output with blocks of its own may be
//     a block of another's (Inception-v3's nested Concats): its blocks then lie in the outer one's buffer;
//   - `r` and the output have one storage type (f16 islands), and the block starts at a multiple of the device's
//     minStorageBufferOffsetAlignment (WebGPU's binding rule; 256 bytes where the device is not known);
//   - the block's bytes are whole 4-byte words, unless it is the last block: buffers and bindings are whole words, so
//     a shorter block's binding would reach into the next one.
// The output may be a graph output or read by a host step: it keeps a buffer of its own, the blocks in it. A Pad's
// dispatch goes only where its input is a view; its constant blocks then come with it.
// Then, per dispatch: no dispatch may bind the output's buffer twice where one binding is written (WebGPU refuses a
// buffer bound read-only and writable in one dispatch; two written ranges are not allowed to alias): a dispatch that
// would (DenseNet's concat([x, f(x)]): f reads x and writes its own block) drops the views it reads, until none does.
// Lifetimes: memory planning sees a view as its base, so the base's buffer lives from the first block written to the
// last read of any block or of the whole; a base with constant blocks lives for the whole run, shared with nothing.
//
// The other way round, a Slice whose output is one block of its input (steps 1, one sliced axis, every dimension
// before it 1) is read in place: its readers bind the input's buffer at the block's offset and the Slice's dispatch
// goes (MediaPipe's hand re-crop, M-LSD's and FaceAntiSpoofing's channel slices). Legality: the output is no graph
// output, not read or written by a host step, not already a view; the input is no constant, not itself a view and
// the same storage type; the block aligned and whole words (or the input's last). Nothing writes a sliced input after
// its producer, so no dispatch binds its buffer with a write while reading the block.

import type { Graph, Node, Tensor } from '../graph/ir.js';
import { sliceRanges } from '../../kernels/slice.js';

/** What a scheduled dispatch tells of itself here (src/runtime/compile.ts Step). */
export interface ViewStep {
  node: Node;
  program: { inputs: readonly number[]; outputs: number };
  /** Tensor names (alias roots) bound: inputs, then outputs. */
  bindings: readonly string[];
  nIn: number;
}

export interface View {
  /** The tensor whose buffer holds this one (a Concat's or Pad's output). */
  base: string;
  /** Where this tensor starts in the base's buffer. */
  byteOffset: number;
}

/** Values written into a base's buffer once, when the session is made. */
export interface ConstantBlock {
  base: string;
  byteOffset: number;
  values: Float32Array;
}

export interface ViewContext<S extends ViewStep> {
  graph: Graph;
  steps: readonly S[];
  root: (t: string) => string;
  /** Bytes per element of a tensor's storage (4, or 2 for an f16 one). */
  elementBytes: (t: string) => number;
  /** Tensors (alias roots) that may not be views: graph inputs and outputs, constants, host steps' reads and writes. */
  pinned: ReadonlySet<string>;
  /** minStorageBufferOffsetAlignment of the device (default 256: WebGPU's). */
  alignment?: number;
}

export interface Views<S extends ViewStep> {
  /** View tensor (an alias root) -> its base and offset. */
  views: Map<string, View>;
  /** The copy dispatches no longer needed. */
  dropped: Set<S>;
  /** Constant blocks to write when the session is made; their bases live for the whole run in buffers of their own. */
  constantBlocks: ConstantBlock[];
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const plain = (n: Node) => n.domain === '' || n.domain === 'ai.onnx';

/** One block of a node's output, in order: a computed tensor (a view candidate) or constant values. */
interface Block { start: number; elements: number; tensor?: string; values?: () => Float32Array; step?: ViewStep }

function floats(t: Tensor): Float32Array {
  const d = t.data as ArrayLike<number | bigint>;
  return Float32Array.from({ length: d.length }, (_, i) => Number(d[i]));
}

/** The blocks of a Concat or Pad output that is one block after another, or undefined. */
function blocksOf(g: Graph, n: Node, steps: readonly ViewStep[]): Block[] | undefined {
  const out = g.tensors.get(n.outputs[0])?.shape;
  if (!out || !plain(n)) return undefined;
  const mine = steps.filter((s) => s.node === n);
  if (n.op === 'Concat') {
    if (mine.some((s) => s.program.inputs.length !== 1 || s.program.outputs !== 1)) return undefined;
    const a = typeof n.attrs.axis === 'number' ? n.attrs.axis : 0;
    const axis = a < 0 ? a + out.length : a;
    if (numel(out.slice(0, axis)) !== 1) return undefined;
    const rest = numel(out.slice(axis + 1));
    const blocks: Block[] = [];
    let at = 0;
    n.inputs.forEach((x, k) => {
      const s = x ? g.tensors.get(x) : undefined;
      if (!s) return;
      const elements = s.shape[axis] * rest;
      const step = mine.find((p) => p.program.inputs[0] === k);
      if (elements > 0) blocks.push({ start: at * rest, elements, step, ...(s.data !== undefined ? { values: () => floats(s) } : { tensor: x }) });
      at += s.shape[axis];
    });
    return blocks;
  }
  if (n.op === 'Pad') {
    const mode = n.attrs.mode ?? 'constant';
    const pads = n.attrs.pads;
    const value = typeof n.attrs.value === 'number' ? n.attrs.value : 0;
    const x = n.inputs[0];
    const inShape = x ? g.tensors.get(x)?.shape : undefined;
    if (mode !== 'constant' || !Array.isArray(pads) || !inShape || mine.length !== 1 || n.inputs.slice(1).some((i) => i)) return undefined;
    const r = inShape.length;
    const p = pads as number[];
    if (p.length !== 2 * r || p.some((v) => v < 0)) return undefined;
    const axes = inShape.map((_, k) => k).filter((k) => p[k] !== 0 || p[k + r] !== 0);
    if (axes.length !== 1) return undefined;
    const axis = axes[0];
    if (numel(out.slice(0, axis)) !== 1) return undefined;
    const rest = numel(out.slice(axis + 1));
    const fill = (elements: number) => () => new Float32Array(elements).fill(value);
    const blocks: Block[] = [];
    if (p[axis] > 0) blocks.push({ start: 0, elements: p[axis] * rest, values: fill(p[axis] * rest) });
    blocks.push({ start: p[axis] * rest, elements: inShape[axis] * rest, tensor: x, step: mine[0] });
    if (p[axis + r] > 0) blocks.push({ start: (p[axis] + inShape[axis]) * rest, elements: p[axis + r] * rest, values: fill(p[axis + r] * rest) });
    return blocks;
  }
  return undefined;
}

/** FCM_OPT_VIEWS=0 in the environment: no views and no constant blocks, every copy runs (for timing them A/B). */
export function viewsOffByEnv(): boolean {
  return typeof process !== 'undefined' && process.env?.FCM_OPT_VIEWS === '0';
}

/** The views and constant blocks of the schedule's Concat and Pad outputs; `steps` is not changed (the caller removes `dropped`). */
export function blockViews<S extends ViewStep>(c: ViewContext<S>): Views<S> {
  if (viewsOffByEnv()) return { views: new Map(), dropped: new Set(), constantBlocks: [] };
  const g = c.graph;
  const alignment = c.alignment ?? 256;
  const written = new Set(c.steps.flatMap((s) => s.bindings.slice(s.nIn)));
  // A view's base may itself be a view (a Concat's output that is a block of another Concat's): `views` holds the
  // immediate base until the end, where every view is resolved to the buffer that holds it.
  const views = new Map<string, View>();
  const bases = new Set<string>();
  const held = new Set<string>();
  const dropped = new Set<S>();
  const top = (t: string): View => {
    let base = t, byteOffset = 0;
    for (let v = views.get(base); v; v = views.get(base)) { byteOffset += v.byteOffset; base = v.base; }
    return { base, byteOffset };
  };
  const constantBlocks: ConstantBlock[] = [];
  const nodes = [...new Set(c.steps.map((s) => s.node))].filter((n) => n.op === 'Concat' || n.op === 'Pad');
  for (const n of nodes) {
    const blocks = blocksOf(g, n, c.steps);
    if (!blocks) continue;
    const base = c.root(n.outputs[0]);
    if (views.has(base)) continue;
    const eb = c.elementBytes(base);
    const total = numel(g.tensors.get(n.outputs[0])!.shape);
    const count = new Map<string, number>();
    for (const b of blocks) if (b.tensor) count.set(c.root(b.tensor), (count.get(c.root(b.tensor)) ?? 0) + 1);
    const mine: string[] = [];
    for (const b of blocks) {
      if (!b.tensor) continue;
      const r = c.root(b.tensor);
      const start = b.start * eb, bytes = b.elements * eb;
      if (b.elements === 0 || c.pinned.has(r) || r === base || views.has(r) || held.has(r) || count.get(r) !== 1 || !written.has(r)) continue;
      if (c.elementBytes(r) !== eb || numel(g.tensors.get(r)!.shape) !== b.elements) continue;
      if (start % alignment !== 0 || (bytes % 4 !== 0 && b.start + b.elements !== total)) continue;
      views.set(r, { base, byteOffset: start });
      mine.push(r);
    }
    if (!mine.length) continue;
    // Dispatches that would bind the base's buffer twice with a write: drop the views they read (else those they
    // write); of a block within a block, the outer one, this node's.
    const mineOf = (t: string): string => { let e = t; while (views.get(e)!.base !== base) e = views.get(e)!.base; return e; };
    for (let changed = true; changed;) {
      changed = false;
      for (const s of c.steps) {
        // This node's copies of its views go; its other copies stay, and may read a block of this very buffer (an
        // input that is a block of an inner Concat that is a block here).
        if (dropped.has(s) || (s.node === n && views.get(s.bindings[0])?.base === base)) continue;
        const ins = s.bindings.slice(0, s.nIn).filter((t) => top(t).base === base);
        const outs = s.bindings.slice(s.nIn).filter((t) => top(t).base === base);
        if (ins.length + outs.length < 2 || !outs.length) continue;
        const drop = ins.find((t) => t !== base) ?? outs.find((t) => t !== base);
        if (!drop) continue;
        views.delete(mineOf(drop));
        changed = true;
      }
    }
    const viewed = blocks.filter((b) => b.tensor && views.get(c.root(b.tensor))?.base === base);
    if (!viewed.length) continue;
    bases.add(base);
    const constants = blocks.filter((b) => b.values);
    if (n.op === 'Pad') {
      dropped.add(blocks.find((b) => b.tensor)!.step as S);
    } else {
      for (const b of [...viewed, ...constants]) if (b.step) dropped.add(b.step as S);
    }
    for (const b of constants) constantBlocks.push({ base, byteOffset: b.start * eb, values: b.values!() });
    if (constants.length) held.add(base);
  }
  // Slices that are one block of their input: their readers read the block in place.
  for (const s of c.steps) {
    const r = s.node.op === 'Slice' && plain(s.node) ? sliceBlock(g, s.node) : undefined;
    if (!r || r.elements === 0) continue;
    const y = c.root(s.node.outputs[0]), base = c.root(s.node.inputs[0]);
    const eb = c.elementBytes(base);
    const start = r.start * eb, bytes = r.elements * eb;
    if (c.pinned.has(y) || views.has(y) || bases.has(y) || views.has(base) || g.tensors.get(base)?.data !== undefined) continue;
    if (c.elementBytes(y) !== eb || start % alignment !== 0 || (bytes % 4 !== 0 && r.start + r.elements !== r.total)) continue;
    views.set(y, { base, byteOffset: start });
    bases.add(base);
    dropped.add(s);
  }
  return { views: new Map([...views.keys()].map((t) => [t, top(t)])), dropped, constantBlocks };
}

/** The block of its input a Slice's output is (steps 1, one sliced axis, every dimension before it 1), or undefined. */
function sliceBlock(g: Graph, n: Node): { start: number; elements: number; total: number } | undefined {
  const x = g.tensors.get(n.inputs[0])?.shape;
  const a = n.attrs;
  // A Slice stored channels-last (src/rewrite/channels-last-store.ts) is a copy into another layout.
  if (a.channelsLast !== undefined) return undefined;
  if (!x || n.inputs.slice(1).some((i) => i) || !Array.isArray(a.starts) || !Array.isArray(a.ends)) return undefined;
  const starts = a.starts as number[];
  const axes = Array.isArray(a.axes) ? (a.axes as number[]) : starts.map((_, k) => k);
  const steps = Array.isArray(a.steps) ? (a.steps as number[]) : starts.map(() => 1);
  if (steps.some((v) => v !== 1)) return undefined;
  let r: ReturnType<typeof sliceRanges>;
  try {
    r = sliceRanges(x, starts, a.ends as number[], axes, steps, n.name);
  } catch {
    return undefined;
  }
  const cut = x.map((_, k) => k).filter((k) => r.shape[k] !== x[k]);
  if (cut.length > 1) return undefined;
  const axis = cut.length ? cut[0] : 0;
  if (numel(x.slice(0, axis)) !== 1) return undefined;
  const rest = numel(x.slice(axis + 1));
  return { start: r.start[axis] * rest, elements: r.shape[axis] * rest, total: numel(x) };
}
