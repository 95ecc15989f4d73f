// Sessions on the caller's device (useDevice: a browser page's, or one shared with other WebGPU code), made as a page
// makes one, requestDevice() with no limits asked: WebGPU's defaults (16 KiB of workgroup storage, 256 invocations),
// half of what lavapipe offers fcm-opt's own device. The kernels must be chosen for that device's limits, the results
// must match onnxruntime, and fcm-opt must leave the device alive when it releases its GPU.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../../src/graph/load.js';
import { createSession } from '../../src/pipeline/session.js';
import { executorOf } from '../../src/runtime/executor.js';
import { type CompileLimits, compileGraph } from '../../src/runtime/compile.js';
import { dawnFlags } from '../../src/runtime/device.js';
import { releaseGpu, useDevice } from '../../src/index.js';
import { systemGpu } from '../../src/runtime/webgpu-node.js';
import { compareOutputs, seededInput } from '../../src/runtime/compare.js';
import type { FloatPrecision } from '../../src/runtime/precision.js';

// The bundled slim MobileNetV2 (fixtures/make-bundled.ts): its head's pointwise-mean kernel takes other tiles
// under the default limits than under lavapipe's, so the choice by limits is exercised, not only the run.
const bytes = new Uint8Array(readFileSync(new URL('../../../fixtures/bundled/mobilenetv2-slim.onnx', import.meta.url)));

after(releaseGpu);

async function reference(feeds: Record<string, { data: Float32Array; shape: number[] }>) {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } });
  const r = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.shape)])));
  await s.release();
  return r;
}

test("a page's device with WebGPU's default limits: kernels within them, fp32 and fp16 match onnxruntime, the device outlives releaseGpu", async () => {
  const g = await loadModel(bytes, { source: 'mobilenetv2-slim.onnx' });
  const x = g.inputs[0];
  const shape = g.tensors.get(x)!.shape;
  const data = seededInput(shape.reduce((a, b) => a * b, 1), 3);
  const ref = await reference({ [x]: { data, shape } });
  // The instance is kept referenced: Dawn for Node frees its adapters and devices with it when it is collected.
  const gpu = systemGpu(dawnFlags());
  const adapter = await gpu.requestAdapter();
  assert.ok(adapter, 'no WebGPU adapter');
  // The test means something only where the adapter offers more than the defaults, as lavapipe does.
  assert.ok(adapter.limits.maxComputeWorkgroupStorageSize > 16384, `${adapter.limits.maxComputeWorkgroupStorageSize}`);
  const features = adapter.features.has('shader-f16') ? ['shader-f16' as GPUFeatureName] : [];
  const device = await adapter.requestDevice({ requiredFeatures: features });
  assert.equal(device.limits.maxComputeWorkgroupStorageSize, 16384);
  assert.equal(device.limits.maxComputeInvocationsPerWorkgroup, 256);
  useDevice(device, adapter.info);
  try {
    const precisions: FloatPrecision[] = features.length ? ['fp32', 'fp16'] : ['fp32'];
    for (const precision of precisions) {
      const s = await createSession(g, { hw: 'h100', precision });
      try {
        const ex = executorOf(s);
        assert.equal(ex.ctx.device, device, 'the session did not run on the caller device');
        for (const st of ex.compiled.steps) {
          const [wx, wy, wz] = st.program.workgroupSize;
          assert.ok(st.program.workgroupStorageBytes <= 16384, `${st.program.name}: ${st.program.workgroupStorageBytes} bytes of workgroup storage`);
          assert.ok(wx * wy * wz <= 256, `${st.program.name}: ${wx * wy * wz} invocations`);
        }
        if (precision === 'fp32') {
          // Under the adapter's own limits some kernel is another: the choice followed the device's limits.
          const wide: string[] = compileGraph(s.graph, adapter.limits as unknown as CompileLimits).steps.map((w) => w.program.cacheKey);
          const here: string[] = ex.compiled.steps.map((h) => h.program.cacheKey);
          assert.equal(here.length, wide.length);
          assert.ok(here.some((k, i) => k !== wide[i]), 'the same kernels as under the adapter limits');
        }
        const out = await s.run({ [x]: data });
        for (const y of s.outputNames) {
          const r = ref[y];
          const c = compareOutputs(out[y].data, r.data as Float32Array, r.dims as number[], undefined, undefined, precision);
          assert.ok(c.ok, `${precision} ${y}: ${JSON.stringify(c)}`);
        }
      } finally {
        s.dispose();
      }
    }
    // fcm-opt releases its GPU; the caller's device stays usable (fcm-opt never destroys a device it did not make).
    await releaseGpu();
    const lost = await Promise.race([device.lost.then(() => 'lost'), new Promise<string>((r) => setTimeout(() => r('alive'), 100))]);
    assert.equal(lost, 'alive');
    const b = device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    device.queue.writeBuffer(b, 0, new Float32Array([1, 2, 3, 4]));
    await b.mapAsync(GPUMapMode.READ);
    assert.deepEqual([...new Float32Array(b.getMappedRange())], [1, 2, 3, 4]);
    b.unmap();
  } finally {
    device.destroy();
    assert.ok(gpu);
  }
});
