// The example page (examples/browser/index.html, served by serve.mjs): load a model, show its plan, time it fused
// and unfused on this page's WebGPU and, when onnxruntime-web is served at /ort/, its WebGPU backend on the same
// model; top 5 of a dropped image for classifiers. With ?model=URL&runs=N&hw=NAME it runs once and POSTs the
// figures to /result (scripts/bench-browser.mjs drives it in headless Chromium).
import * as fcm from '/dist/browser/fcm-opt.mjs';

const $ = (id) => document.getElementById(id);
let model; // { name, bytes }
let session; // the fused session, for images

async function hwConfig(name) {
  if (name === 'auto') {
    try { return await fcm.resolveHw('auto'); } catch (e) { log(`auto: ${e.message}; planning for h100 instead`); name = 'h100'; }
  }
  const r = await fetch(`/hw_configs/${name}.cfg`);
  if (!r.ok) throw new Error(`/hw_configs/${name}.cfg: HTTP ${r.status}`);
  return fcm.parseHwCfg(await r.text(), `${name}.cfg`);
}

function log(html) { const p = document.createElement('div'); p.innerHTML = html; $('out').append(p); }
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

async function timeRuns(run, runs) {
  for (let i = 0; i < 3; i++) await run();
  const ms = [];
  for (let i = 0; i < runs; i++) { const t = performance.now(); await run(); ms.push(performance.now() - t); }
  return median(ms);
}

function seededFeeds(names, shapes) {
  return Object.fromEntries(names.map((x, i) => [x, fcm.seededInput(shapes[x].reduce((a, b) => a * b, 1), i)]));
}

async function ortTime(bytes, feeds, shapes, runs) {
  let ort;
  try { ort = await import('/ort/ort.webgpu.bundle.min.mjs'); } catch { return { unavailable: 'onnxruntime-web is not served at /ort/ (node examples/browser/serve.mjs serves it)' }; }
  // One WASM thread: the page is not cross-origin isolated (the WebGPU backend does the work).
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = '/ort/';
  try {
    const s = await ort.InferenceSession.create(bytes, { executionProviders: ['webgpu'] });
    const inputs = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v, shapes[k])]));
    const run = async () => { const out = await s.run(inputs); for (const t of Object.values(out)) await t.getData(); };
    const ms = await timeRuns(run, runs);
    await s.release();
    return { ms, version: ort.env.versions?.web ?? '' };
  } catch (e) {
    return { unavailable: String(e.message ?? e).split('\n')[0] };
  }
}

export async function planAndTime(m, hwName, runs) {
  const hw = await hwConfig(hwName);
  const g = await fcm.loadModel(m.bytes, { source: m.name });
  const pin = fcm.planningInput(g, hw);
  const plan = fcm.planFor(pin, { model: m.name });
  const fused = await fcm.createSession(m.bytes, { plan });
  const unfused = await fcm.createSession(m.bytes, { plan: 'unfused' });
  const feeds = seededFeeds(fused.inputNames, fused.inputShapes);
  const result = {
    model: m.name, hw: hw.name, path: fused.path,
    fcms: plan.modules.filter((x) => x.layers.length > 1).length,
    planText: fcm.formatPlan(plan, pin.dag),
    fusedMs: await timeRuns(() => fused.run(feeds), runs),
    unfusedMs: await timeRuns(() => unfused.run(feeds), runs),
  };
  result.ort = m.name.endsWith('.tflite') ? { unavailable: 'onnxruntime reads ONNX, not TFLite' } : await ortTime(m.bytes, feeds, fused.inputShapes, runs);
  unfused.dispose();
  session?.dispose();
  session = fused;
  return result;
}

function show(r) {
  log(`<h2>${r.model}</h2><pre>${r.planText.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</pre>`);
  const ort = r.ort.ms !== undefined ? `${r.ort.ms.toFixed(2)}` : `unavailable: ${r.ort.unavailable}`;
  log(`<table><tr><th></th><th>median ms</th></tr><tr><td>fcm-opt fused (${r.fcms} FCMs, ${r.path})</td><td>${r.fusedMs.toFixed(2)}</td></tr>` +
    `<tr><td>fcm-opt unfused</td><td>${r.unfusedMs.toFixed(2)}</td></tr><tr><td>onnxruntime-web WebGPU</td><td>${ort}</td></tr></table>`);
}

/** An image as the classifier's input: resized to its H x W, ImageNet mean/std, NCHW. */
async function imageFeeds(file) {
  const name = session.inputNames[0];
  const [, c, h, w] = session.inputShapes[name];
  const bmp = await createImageBitmap(file, { resizeWidth: w, resizeHeight: h, resizeQuality: 'high' });
  const canvas = new OffscreenCanvas(w, h);
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bmp, 0, 0);
  const px = ctx.getImageData(0, 0, w, h).data;
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  const x = new Float32Array(c * h * w);
  for (let k = 0; k < c; k++) for (let i = 0; i < h * w; i++) x[k * h * w + i] = (px[4 * i + k] / 255 - mean[k]) / std[k];
  return { [name]: x };
}

async function classify(file) {
  if (!session) { log('load a classifier first'); return; }
  const out = await session.run(await imageFeeds(file));
  const y = out[session.outputNames[0]].data;
  const top = [...y.keys()].sort((a, b) => y[b] - y[a]).slice(0, 5);
  log(`<p>${file.name}: top 5 classes ${top.map((i) => `${i} (${y[i].toFixed(3)})`).join(', ')}</p>`);
}

async function take(file) {
  if (file.type.startsWith('image/')) return classify(file);
  model = { name: file.name, bytes: new Uint8Array(await file.arrayBuffer()) };
  $('run').disabled = false;
  log(`loaded ${file.name} (${(model.bytes.length / 1e6).toFixed(2)} MB)`);
}

const params = new URLSearchParams(location.search);
if (params.has('model')) {
  // Headless mode: one model, figures POSTed back.
  try {
    const url = params.get('model');
    const r = await planAndTime({ name: url.split('/').pop(), bytes: await fcm.loadBytes(url) }, params.get('hw') ?? 'h100', Number(params.get('runs') ?? 20));
    const a = await navigator.gpu.requestAdapter();
    await fetch('/result', { method: 'POST', body: JSON.stringify({ ok: true, adapter: a?.info?.description || a?.info?.vendor, userAgent: navigator.userAgent, ...r }) });
  } catch (e) {
    await fetch('/result', { method: 'POST', body: JSON.stringify({ ok: false, error: String(e.stack ?? e) }) });
  }
} else {
  $('file').onchange = (e) => take(e.target.files[0]);
  $('load').onclick = async () => { const url = $('url').value; model = { name: url.split('/').pop(), bytes: await fcm.loadBytes(url) }; $('run').disabled = false; log(`loaded ${url}`); };
  $('run').onclick = async () => { $('run').disabled = true; try { show(await planAndTime(model, $('hw').value, Number($('runs').value))); } catch (e) { log(`<b>${e.message}</b>`); } $('run').disabled = false; };
  const drop = $('drop');
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add('over'); };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove('over'); take(e.dataTransfer.files[0]); };
}
