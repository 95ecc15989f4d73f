// Runs a node's layer-by-layer kernel programs (kernels/registry.ts) on the test device: one buffer per node
// input and output (outputs filled with NaN, so an element no program writes fails the comparison), all
// programs in one compute pass, outputs read back. Error scopes turn validation / OOM into thrown errors.
// `storage` 'f16': the programs' half-storage forms, inputs written and outputs read as binary16.

import type { Node } from '../../src/graph/ir.js';
import { newAttrs } from '../../src/graph/ir.js';
import type { KernelProgram } from '../../kernels/program.js';
import { kernelFor } from '../../kernels/registry.js';
import type { StorageType } from '../../kernels/f16.js';
import { fromHalf, toHalf } from '../../src/runtime/half.js';
import { getDevice, limitsOf, pipelineOf, readBack } from './fused-harness.js';
import { maxAbsDiff } from './reference.js';
import assert from 'node:assert/strict';

export interface LayerCase {
  op: string;
  attrs?: Record<string, unknown>;
  /** Node inputs: data and shape; null for an absent optional input. */
  inputs: ({ data: Float32Array; shape: number[] } | null)[];
  outputShapes: number[][];
}

export function nodeOf(c: LayerCase): Node {
  return {
    name: `${c.op.toLowerCase()}_test`, op: c.op, domain: '',
    inputs: c.inputs.map((x, i) => (x ? `in${i}` : '')),
    outputs: c.outputShapes.map((_, i) => `out${i}`),
    attrs: newAttrs(c.attrs as Record<string, never>),
  };
}

export async function programsOf(c: LayerCase, storage: StorageType = 'f32'): Promise<KernelProgram[]> {
  const device = await getDevice();
  const k = kernelFor(nodeOf(c), c.inputs.map((x) => x?.shape), c.outputShapes, limitsOf(device), storage);
  if (k.kind !== 'programs') throw new Error(`${c.op} is an alias`);
  return k.programs;
}

/** `given`: programs to run instead of the registry's (kernel variants), bound as the registry's would be. */
export async function runLayer(c: LayerCase, storage: StorageType = 'f32', given?: KernelProgram[]): Promise<Float32Array[]> {
  const device = await getDevice();
  const programs = given ?? await programsOf(c, storage);
  const S = GPUBufferUsage.STORAGE, CS = GPUBufferUsage.COPY_SRC;
  const half = storage === 'f16';
  const make = (d: Float32Array) => {
    const bytes: ArrayBufferView = half ? toHalf(d) : d;
    const b = device.createBuffer({ size: Math.max(4, Math.ceil(bytes.byteLength / 4) * 4), usage: S | CS, mappedAtCreation: true });
    new Uint8Array(b.getMappedRange()).set(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    b.unmap();
    return b;
  };
  const ins = c.inputs.map((x) => (x ? make(x.data) : undefined));
  const outs = c.outputShapes.map((s) => make(new Float32Array(s.reduce((a, b) => a * b, 1)).fill(NaN)));
  device.pushErrorScope('out-of-memory');
  device.pushErrorScope('validation');
  const enc = device.createCommandEncoder();
  const pass = enc.beginComputePass();
  for (const p of programs) {
    const pipeline = await pipelineOf(device, p.wgsl, p.name);
    const bound = [...p.inputs.map((i) => ins[i]!), ...(p.outputIndices ?? [...Array(p.outputs).keys()]).map((i) => outs[i])];
    const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: bound.map((buffer, binding) => ({ binding, resource: { buffer } })) });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(...p.dispatch);
  }
  pass.end();
  device.queue.submit([enc.finish()]);
  const results = await Promise.all(outs.map(async (b, i) => {
    const n = c.outputShapes[i].reduce((a, q) => a * q, 1);
    if (!half) return readBack(device, b, 4 * n);
    const raw = await readBack(device, b, 4 * Math.ceil(n / 2));
    return fromHalf(new Uint16Array(raw.buffer, 0, n));
  }));
  const v = await device.popErrorScope();
  const m = await device.popErrorScope();
  for (const b of [...ins, ...outs]) b?.destroy();
  if (v || m) throw new Error(`${c.op}: ${(v ?? m)!.message}`);
  return results;
}

/**
 * Tolerance 1e-4 * max(1, max|ref|): the reference sums in float64, the kernels in float32 in their own order
 * (tiles, channel chunks), so each result carries rounding of about K * 2^-24 of its magnitude for K terms
 * (K <= a few hundred here): far below the bound, while a wrong index, tap or epilogue is O(1) off.
 */
export function assertClose(got: ArrayLike<number>, ref: ArrayLike<number>, what: string): void {
  const { maxDiff, maxRef, at } = maxAbsDiff(got, ref);
  const tol = 1e-4 * Math.max(1, maxRef);
  assert.ok(maxDiff <= tol, `${what}: max |diff| ${maxDiff} > ${tol} at ${at} (got ${got[at]}, expected ${ref[at]})`);
}

/**
 * |got - ref| <= atol + rtol * |ref| element by element, for outputs whose elements are far smaller than their
 * maximum (probabilities, sigmoid tails), where assertClose's bound relative to max |ref| would pass an element
 * that is off by all of its value (a kernel writing zeros). `atol` must stay far below the smallest values
 * that matter; the caller justifies `rtol` from the kernel's arithmetic.
 */
export function assertRelClose(got: ArrayLike<number>, ref: ArrayLike<number>, what: string, rtol: number, atol: number): void {
  assert.equal(got.length, ref.length, `${what}: length`);
  let worst = 0, worstRatio = 0;
  for (let i = 0; i < ref.length; i++) {
    const r = Math.abs(got[i] - ref[i]) / (atol + rtol * Math.abs(ref[i]));
    // NaN (an element no program wrote, or a NaN result) counts as the worst possible.
    const ratio = Number.isNaN(r) ? Infinity : r;
    if (ratio > worstRatio) { worst = i; worstRatio = ratio; }
  }
  assert.ok(worstRatio <= 1, `${what}: element ${worst}: got ${got[worst]}, expected ${ref[worst]} (|diff| is ${worstRatio}x atol ${atol} + rtol ${rtol} * |expected|)`);
}
