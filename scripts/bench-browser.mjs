// fcm-opt against onnxruntime-web's WebGPU backend in one page (examples/browser/, headless mode) of headless
// Chromium on its WebGPU adapter: median latency of each, fused and unfused, same input, outputs read into JS.
//
//   npm run build && node scripts/build-browser.mjs && node scripts/bench-browser.mjs [MODEL_URL ...] [--runs N] [--hw NAME]
//
// MODEL_URL: a path the example server serves (default /models/mobilenetv2-x0.35-c100.onnx).
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { runHeadlessPage, webgpuFlags } = await import(pathToFileURL(join(root, 'dist/src/bench/headless-page.js')).href);
const { ensureOrtWeb, exampleRoutes } = await import(pathToFileURL(join(root, 'examples/browser/serve.mjs')).href);

const args = process.argv.slice(2);
const opt = (name, dflt) => (args.includes(name) ? args[args.indexOf(name) + 1] : dflt);
const models = args.filter((a, i) => !a.startsWith('--') && !['--runs', '--hw'].includes(args[i - 1]));
const routes = exampleRoutes(await ensureOrtWeb());
for (const m of models.length ? models : ['/models/mobilenetv2-x0.35-c100.onnx']) {
  const page = `/examples/browser/index.html?model=${encodeURIComponent(m)}&runs=${opt('--runs', '20')}&hw=${opt('--hw', 'h100')}`;
  const r = await runHeadlessPage((u) => routes(u), { page, flags: webgpuFlags, timeoutMs: 600_000 });
  if (!r.ok) { console.error(`${m}: ${r.error}`); process.exitCode = 1; continue; }
  const ort = r.ort.ms !== undefined ? `${r.ort.ms.toFixed(2)} ms` : `unavailable (${r.ort.unavailable})`;
  console.log(`${m} on ${r.adapter} (${r.userAgent.replace(/^.*(HeadlessChrome\/\S+).*$/, '$1')}), plan for ${r.hw}, ${r.fcms} FCMs: ` +
    `fcm-opt fused ${r.fusedMs.toFixed(2)} ms, unfused ${r.unfusedMs.toFixed(2)} ms, onnxruntime-web WebGPU ${ort}`);
}
