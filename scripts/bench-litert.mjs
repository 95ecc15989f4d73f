// Latency of the TFLite interpreter on .tflite models: LiteRT.js (TFLite compiled to WASM, the XNNPACK delegate on
// the CPU; the pinned package of scripts/record-tflite-oracle.mjs) in headless Chromium. A CPU contestant for the
// .tflite models `fcm-opt bench` times on the GPU, where onnxruntime cannot read the file: run both on one machine
// and compare their medians by hand. Each model is compiled once and run on a fixed input; the time of a run
// includes reading its outputs back into JS.
//
//   node scripts/bench-litert.mjs model.tflite [more.tflite ...] [--runs 20] [--warmup 3] [--threads] [--json out.json]
//   node scripts/bench-litert.mjs fixture:mobilenet-v1-224     # a model of fixtures/tflite-oracle.ts (npm run build)
//
// --threads: LiteRT's threaded WASM build (the page is served cross-origin isolated); default: one thread.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { liteRtPackages, runLiteRt } from './record-tflite-oracle.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function parseArgs(argv) {
  const opts = { models: [], runs: 20, warmup: 3, threads: false, json: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const int = (name) => {
      const v = Number(argv[++i]);
      if (!Number.isSafeInteger(v) || v < (name === 'warmup' ? 0 : 1)) throw new Error(`--${name}: expected an integer, got ${argv[i]}`);
      return v;
    };
    if (a === '--runs') opts.runs = int('runs');
    else if (a === '--warmup') opts.warmup = int('warmup');
    else if (a === '--threads') opts.threads = true;
    else if (a === '--json') opts.json = argv[++i];
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else opts.models.push(a);
  }
  if (opts.models.length === 0) throw new Error('usage: node scripts/bench-litert.mjs model.tflite|fixture:NAME ... [--runs N] [--warmup N] [--threads] [--json FILE]');
  return opts;
}

async function modelBytes(spec) {
  if (spec.startsWith('fixture:')) {
    const fixtures = join(root, 'dist', 'fixtures', 'tflite-oracle.js');
    if (!existsSync(fixtures)) throw new Error(`${fixtures} is missing: run npm run build first`);
    const { oracleModels } = await import(pathToFileURL(fixtures).href);
    const m = oracleModels.find((x) => x.name === spec.slice('fixture:'.length));
    if (!m) throw new Error(`${spec}: no such model (known: ${oracleModels.map((x) => x.name).join(', ')})`);
    return m.bytes();
  }
  if (!existsSync(spec)) throw new Error(`${spec}: no such file`);
  return new Uint8Array(readFileSync(spec));
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

const opts = parseArgs(process.argv.slice(2));
const blobs = {};
const runs = [];
for (const [i, spec] of opts.models.entries()) {
  blobs[`/model/${i}.tflite`] = await modelBytes(spec);
  runs.push({ name: spec, model: `/model/${i}.tflite`, accelerator: 'wasm', inputs: 'random', timing: { warmup: opts.warmup, iterations: opts.runs } });
}
const result = await runLiteRt({ runs, threads: opts.threads }, blobs);
const rows = result.runs.map((r) => {
  const ms = [...r.results[0].timing].sort((a, b) => a - b);
  return { model: r.name, medianMs: quantile(ms, 0.5), p90Ms: quantile(ms, 0.9), compileMs: r.compileMs, runs: ms.length };
});
const label = `LiteRT.js ${liteRtPackages.core.spec.split('@').pop()} (WASM CPU, XNNPACK, ${opts.threads ? 'threaded' : '1 thread'})`;
console.log(`${label}, ${result.userAgent}`);
for (const r of rows) console.log(`  ${basename(r.model)}: median ${r.medianMs.toFixed(2)} ms, p90 ${r.p90Ms.toFixed(2)} ms over ${r.runs} runs (compile ${r.compileMs.toFixed(0)} ms)`);
if (opts.json) writeFileSync(opts.json, `${JSON.stringify({ contestant: label, userAgent: result.userAgent, crossOriginIsolated: result.crossOriginIsolated, rows }, null, 1)}\n`);
