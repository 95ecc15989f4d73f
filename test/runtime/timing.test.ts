// The timestamp timer's passes, checked on a recording fake of the few WebGPU calls it makes: what it encodes and
// submits, not how fast the device runs it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DispatchTimer } from '../../src/runtime/timing.js';
import type { Dispatch, GpuObjects } from '../../src/runtime/gpu.js';
import { globals } from 'webgpu';

// The timer names GPUBufferUsage and GPUMapMode, which the runtime installs with the device.
Object.assign(globalThis, globals);

/** A fake GpuObjects whose passes record their dispatches; every timed pass reads as `passNs` of GPU time. */
function recordingGpu(passNs: bigint) {
  const passes: { timed: boolean; dispatches: number }[] = [];
  let submits = 0;
  const buffer = () => ({
    mapAsync: async () => {},
    getMappedRange: (_o: number, bytes: number) => {
      const ts = new BigUint64Array(bytes / 8);
      for (let k = 0; k < ts.length; k += 2) { ts[k] = 1000n; ts[k + 1] = 1000n + passNs; }
      return ts.buffer;
    },
    unmap: () => {},
  });
  const gpu = {
    ctx: { timestamps: true, device: { queue: { submit: () => { submits++; } } } },
    querySet: () => ({}),
    buffer,
    encoder: () => ({
      beginComputePass: (desc?: GPUComputePassDescriptor) => {
        const p = { timed: !!desc?.timestampWrites, dispatches: 0 };
        passes.push(p);
        return { setPipeline: () => {}, setBindGroup: () => {}, dispatchWorkgroups: () => { p.dispatches++; }, end: () => {} };
      },
      resolveQuerySet: () => {},
      copyBufferToBuffer: () => {},
      finish: () => ({}),
    }),
  } as unknown as GpuObjects;
  return { gpu, passes, submits: () => submits };
}

const list = (n: number) => Array.from({ length: n }, (_, i) => ({ pipeline: { i }, bindGroup: {}, size: [1, 1, 1] }) as unknown as Dispatch);

test('onePass: one timed pass of the list; with heat, that many untimed repetitions before it in the same submission', async () => {
  const r = recordingGpu(250_000n);
  const t = new DispatchTimer(r.gpu, 'm.onnx');
  assert.equal(await t.onePass(list(3)), 0.25);
  assert.deepEqual(r.passes, [{ timed: true, dispatches: 3 }]);
  assert.equal(r.submits(), 1);
  r.passes.length = 0;
  assert.equal(await t.onePass(list(3), 4), 0.25);
  assert.deepEqual(r.passes, [{ timed: false, dispatches: 12 }, { timed: true, dispatches: 3 }]);
  assert.equal(r.submits(), 2);
});
