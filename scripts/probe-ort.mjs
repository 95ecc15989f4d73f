// Checks that onnxruntime-node's WebGPU provider starts on this machine and runs a model once.
import * as ort from 'onnxruntime-node';
const path = process.argv[2] ?? 'fixtures/bundled/mobilenetv2-slim.onnx';
for (const ep of ['webgpu', 'cpu']) {
  try {
    const s = await ort.InferenceSession.create(path, { executionProviders: [ep] });
    const x = new ort.Tensor('float32', new Float32Array(3 * 224 * 224), [1, 3, 224, 224]);
    const t0 = performance.now();
    for (let i = 0; i < 20; i++) await s.run({ [s.inputNames[0]]: x });
    console.log(ep, 'ok', ((performance.now() - t0) / 20).toFixed(3), 'ms/run');
  } catch (e) { console.log(ep, 'failed:', e.message); }
}
