// Runs the job the recording server hands out (/job.json) with LiteRT.js and posts every output back (/result).
// A run: { name, model (url), accelerator, inputs: [{ url, dtype, shape }] or 'random', timing?: { warmup, iterations } }
// (with timing, outputs are not sent back).
// accelerator 'wasm' is LiteRT's CPU accelerator (the XNNPACK delegate); 'webnn' without navigator.ml falls back to
// the same CPU path (see scripts/record-tflite-oracle.mjs).
import { Tensor, loadAndCompile, loadLiteRt } from '@litertjs/core';

const log = [];
for (const level of ['log', 'info', 'warn', 'error']) {
  const orig = console[level].bind(console);
  console[level] = (...args) => { log.push(`${level}: ${args.map(String).join(' ')}`); orig(...args); };
}
const post = (body) => fetch('/result', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const arrays = { int8: Int8Array, uint8: Uint8Array, float32: Float32Array, int32: Int32Array };
const bytes = async (url) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};

try {
  const job = await (await fetch('/job.json')).json();
  await loadLiteRt('/litert/core/wasm/', job.threads ? { threads: true } : undefined);
  const runs = [];
  for (const run of job.runs) {
    const model = await bytes(run.model);
    const t0 = performance.now();
    const compiled = await loadAndCompile(model, { accelerator: run.accelerator });
    const compileMs = performance.now() - t0;
    const outputDetails = compiled.getOutputDetails().map((d) => ({ name: d.name, dtype: d.dtype, shape: Array.from(d.shape) }));
    const results = [];
    // inputs 'random': one set of values in [0, 1) * 255 (or 0..255 for 8-bit types) per model input, for timing.
    const sets = run.inputs === 'random' ? [null] : run.inputs;
    for (const inp of sets) {
      let xs;
      if (inp === null) {
        xs = compiled.getInputDetails().map((d) => {
          const n = d.shape.reduce((a, b) => a * b, 1);
          const data = new arrays[d.dtype](n);
          for (let i = 0; i < n; i++) data[i] = (i * 2654435761 >>> 24) % 255; // a fixed pseudo-random pattern
          return new Tensor(data, Array.from(d.shape));
        });
      } else {
        const raw = await bytes(inp.url);
        const data = new arrays[inp.dtype](raw.buffer, raw.byteOffset, raw.byteLength / arrays[inp.dtype].BYTES_PER_ELEMENT);
        xs = [new Tensor(data, inp.shape)];
      }
      const x = xs;
      const ys = await compiled.run(x);
      const outputs = [];
      for (const y of ys) {
        const d = await y.data();
        outputs.push({ dtype: y.type.dtype, shape: Array.from(y.type.layout.dimensions), data: Array.from(d) });
        y.delete();
      }
      let timing;
      if (run.timing) {
        for (let i = 0; i < run.timing.warmup; i++) for (const y of await compiled.run(x)) y.delete();
        const ms = [];
        for (let i = 0; i < run.timing.iterations; i++) {
          const s = performance.now();
          const out = await compiled.run(x);
          for (const y of out) await y.data();
          ms.push(performance.now() - s);
          for (const y of out) y.delete();
        }
        timing = ms;
      }
      for (const t of x) t.delete();
      results.push({ input: inp === null ? 'random' : inp.url, outputs: run.timing ? [] : outputs, timing });
    }
    runs.push({ name: run.name, accelerator: run.accelerator, compileMs, fullyAccelerated: compiled.isFullyAccelerated, outputDetails, results });
    compiled.delete();
  }
  await post({ ok: true, userAgent: navigator.userAgent, crossOriginIsolated, runs, log });
} catch (e) {
  await post({ ok: false, error: String((e && e.stack) || e), log });
}
