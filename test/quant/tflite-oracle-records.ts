// Reads the TFLite-interpreter records of test/data/tflite-oracle/ (scripts/record-tflite-oracle.mjs) and compares
// int8 tensors with them: the helpers the reference test (test/quant/tflite-oracle.test.ts) and the GPU executor
// test (test/kernels/int8/tflite-oracle.test.ts) share.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inputBytes, oracleModels, sha256, type OracleInput, type OracleModel } from '../../fixtures/tflite-oracle.js';
import type { Graph, Node } from '../../src/graph/ir.js';
import { runInt8Reference } from '../../src/quant/run-reference.js';

// Sources compile to dist/test/quant/; the records stay in the source tree.
const here = dirname(fileURLToPath(import.meta.url));
const dataDir = [join(here, '..', 'data', 'tflite-oracle'), join(here, '..', '..', '..', 'test', 'data', 'tflite-oracle')]
  .find((d) => { try { readFileSync(join(d, 'tie-probe.json')); return true; } catch { return false; } })!;

type Bytes = Int8Array | Uint8Array | Float32Array;
interface RawRecord {
  model: string; modelSha256: string;
  inputs: Array<{ seed: number; dtype: string; shape: number[]; sha256: string }>;
  outputDetails: Array<{ name: string; dtype: 'int8' | 'uint8' | 'float32'; shape: number[] }>;
  outputs: Record<string, string[][] | string>;
}

export interface OracleRecord {
  model: OracleModel;
  raw: RawRecord;
  /** outputs[accelerator][input][output], decoded (NHWC for rank 4, as the interpreter gives them). */
  outputs: Record<string, Bytes[][]>;
}

const arrays = { int8: Int8Array, uint8: Uint8Array, float32: Float32Array };

function decode(dtype: 'int8' | 'uint8' | 'float32', b64: string): Bytes {
  const buf = Buffer.from(b64, 'base64');
  const bytes = new Uint8Array(buf.length);
  bytes.set(buf);
  return new arrays[dtype](bytes.buffer, 0, bytes.length / arrays[dtype].BYTES_PER_ELEMENT);
}

/** A record with its model and inputs checked against the builders (a changed builder fails here, loudly). */
export function loadRecord(name: string): OracleRecord {
  const model = oracleModels.find((m) => m.name === name);
  assert.ok(model, `no oracle model '${name}' in fixtures/tflite-oracle.ts`);
  const raw = JSON.parse(readFileSync(join(dataDir, `${name}.json`), 'utf8')) as RawRecord;
  const bytes = model.bytes();
  assert.equal(sha256(bytes), raw.modelSha256, `${name}: the builder's model is not the one recorded (re-record: node scripts/record-tflite-oracle.mjs ${name})`);
  assert.deepEqual(raw.inputs.map((i) => i.seed), model.seeds, `${name}: seeds`);
  for (const i of raw.inputs) assert.equal(sha256(inputBytes(model.inputs(i.seed))), i.sha256, `${name}: input of seed ${i.seed} is not the one recorded`);
  const outputs: Record<string, Bytes[][]> = {};
  for (const [acc, o] of Object.entries(raw.outputs)) {
    if (typeof o === 'string') continue;
    outputs[acc] = o.map((perInput) => perInput.map((b64, k) => decode(raw.outputDetails[k].dtype, b64)));
  }
  for (const [acc, o] of Object.entries(raw.outputs)) {
    if (typeof o === 'string') outputs[acc] = outputs[o.replace(/^same as /, '')];
  }
  return { model, raw, outputs };
}

/** NHWC (the interpreter's layout) to the IR's NCHW, and back; other ranks are unchanged. */
export function toNchw<T extends Bytes>(x: T, shape: number[]): T {
  if (shape.length !== 4) return x;
  const [n, h, w, c] = shape;
  const y = new (x.constructor as new (n: number) => T)(x.length);
  for (let b = 0; b < n; b++) for (let i = 0; i < h * w; i++) for (let ch = 0; ch < c; ch++) y[(b * c + ch) * h * w + i] = x[(b * h * w + i) * c + ch];
  return y;
}
export function toNhwc<T extends Bytes>(x: T, nchwShape: number[]): T {
  if (nchwShape.length !== 4) return x;
  const [n, c, h, w] = nchwShape;
  const y = new (x.constructor as new (n: number) => T)(x.length);
  for (let b = 0; b < n; b++) for (let ch = 0; ch < c; ch++) for (let i = 0; i < h * w; i++) y[(b * h * w + i) * c + ch] = x[(b * c + ch) * h * w + i];
  return y;
}

/** The model input of seed `seed` in the IR's layout, for the reference and the executor. */
export function irInput(x: OracleInput): Bytes {
  return toNchw(x.data, x.shape);
}

export interface Diff { n: number; differ: number; max: number }

/** Element-wise difference in LSB of two outputs (float outputs are compared on their grid `lsb`). */
export function diff(got: ArrayLike<number>, want: ArrayLike<number>, lsb = 1): Diff {
  assert.equal(got.length, want.length, 'output lengths');
  let differ = 0, max = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.round(Math.abs(got[i] - want[i]) / lsb);
    if (d) { differ++; max = Math.max(max, d); }
  }
  return { n: want.length, differ, max };
}

/** The LSB of an output: 1 for 8-bit ones; the float output of the MobileNet-style model is a dequantized softmax. */
export const outputLsb = (o: ArrayLike<number>) => (o instanceof Float32Array ? 1 / 256 : 1);

/**
 * End to end, the reference and the GPU executor (equal to it bit for bit) against the interpreter: per model and
 * output, [most differing values over the recorded inputs, largest difference in LSB], as measured. The layers'
 * 1-LSB requantization differences (double rounding vs XNNPACK's float rounding) carried to the outputs.
 */
export const endToEndBounds: Record<string, Array<[number, number]>> = {
  'mobilenet-style-int8': [[2, 1]],
  'oracle-ops': [[140, 4], [1, 1], [0, 0]],
  'mobilenet-v1-224': [[7, 5]],
  'proxyless-gpu-224': [[6, 1]],
};

export const addDiff = (a: Diff, b: Diff): Diff => ({ n: a.n + b.n, differ: a.differ + b.differ, max: Math.max(a.max, b.max) });
export const fmt = (d: Diff) => `${d.differ}/${d.n} differ, max ${d.max} LSB`;

/**
 * Layer by layer on a taps record: every int8 activation X that the model taps (output `X/uint8`, zero point + 128),
 * recomputed by the integer reference from the interpreter's own values of the activations X is computed from (so
 * no difference carries over from one layer to the next). Returns, per tapped tensor, the op that produces it and
 * the difference to the interpreter's X.
 */
export function layerByLayer(g: Graph, rec: OracleRecord, accelerator: string, inputIndex: number): Array<{ tensor: string; op: string; diff: Diff }> {
  const outs = rec.outputs[accelerator][inputIndex];
  const recorded = new Map<string, Int8Array | Uint8Array | Float32Array>();
  recorded.set(g.inputs[0], irInput(rec.model.inputs(rec.model.seeds[inputIndex])));
  rec.raw.outputDetails.forEach((d, k) => {
    const name = d.name.replace(/\/uint8$/, '');
    if (name === d.name) return; // the model's own output
    assert.equal(d.dtype, 'uint8', `${rec.model.name}: tap ${d.name}`);
    const i8 = Int8Array.from(outs[k] as Uint8Array, (v) => v - 128);
    recorded.set(name, toNchw(i8, d.shape));
  });
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const result: Array<{ tensor: string; op: string; diff: Diff }> = [];
  for (const [name, want] of recorded) {
    if (name === g.inputs[0]) continue;
    // The nodes from recorded (or constant) tensors to `name`: the op and what the importer split off it
    // (a fused activation's Relu/Clip, the DequantizeLinear + QuantizeLinear of a requantizing QUANTIZE).
    const chain: Node[] = [];
    const boundary = new Set<string>();
    const visit = (t: string) => {
      if (t !== name && recorded.has(t)) { boundary.add(t); return; }
      const n = producer.get(t);
      if (!n) { if (!g.tensors.get(t)?.data) boundary.add(t); return; }
      if (chain.includes(n)) return;
      for (const i of n.inputs) if (i) visit(i);
      chain.push(n);
    };
    visit(name);
    const inputs = [...boundary];
    const feeds: Record<string, ArrayLike<number>> = {};
    for (const t of inputs) {
      const v = recorded.get(t);
      if (!v) throw new Error(`${rec.model.name}: ${name} depends on '${t}', which is not tapped`);
      feeds[t] = v;
    }
    const sub: Graph = { ...g, nodes: chain, inputs, outputs: [name] };
    const got = runInt8Reference(sub, feeds as never).outputs[0].data as Int8Array;
    const op = chain.find((n) => !['Relu', 'Clip', 'DequantizeLinear', 'Reshape', 'Flatten', 'Squeeze'].includes(n.op))?.op ?? chain[chain.length - 1].op;
    result.push({ tensor: name, op, diff: diff(got, want) });
  }
  return result;
}
