// fcm-opt report: the page's content, its layout (readable at 200+ layers), escaping of model-provided
// strings, the CLI, and the page rendered in headless Chromium (no console errors, no requests, one frame
// per fused module, no overlapping text).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { main } from '../../src/cli/main.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { loadModel } from '../../src/graph/load.js';
import { toDag } from '../../src/planner/to-dag.js';
import { mobileNetV2Stack } from '../../fixtures/models.js';
import type { Dag, DagLayer } from '../../src/planner/dag.js';
import { loadDag, validateDag } from '../../src/planner/dag-load.js';
import { loadHw } from '../../src/planner/hw.js';
import { planFusion } from '../../src/planner/index.js';
import type { Plan } from '../../src/planner/plan.js';
import { isFused, layoutGraph, overlaps, type GraphLayout } from '../../src/report/layout.js';
import { esc, makeReport, renderReport, reportBench, type ReportBench } from '../../src/report/index.js';
import type { BenchReport } from '../../src/bench/bench.js';
import { haveChromium, chromiumPath, Page } from './chromium.js';

const dags = resolve('test/planner/fuseplanner-reference/dags');
const tmp = mkdtempSync(join(tmpdir(), 'fcm-report-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** An ONNX fixture model as an .onnx file. */
function fixtureModel(): string {
  const path = join(tmp, 'mobilenetv2_stack.onnx');
  if (!existsSync(path)) writeFileSync(path, exportOnnx(mobileNetV2Stack()));
  return path;
}

/**
 * A MobileNetV2-like DAG of `blocks` inverted residuals (PW expand, DW, PW project, Add) after a stem conv,
 * with a side branch (a PW conv on the block input, added in) every 7th block so that ranks hold two layers,
 * and exporter-style long names.
 */
function syntheticDag(blocks: number): Dag {
  const dag: DagLayer[] = [];
  type NewLayer = Pick<DagLayer, 'name' | 'op' | 'parents' | 'ifms_shape' | 'ofms_shape' | 'nodes' | 'type' | 'weights_shape' | 'strides'> & { activation?: string };
  const add = (l: NewLayer): number => {
    const id = dag.length;
    dag.push({ ...l, activation: l.activation ?? '0', id, children: [] });
    for (const p of l.parents) dag[p].children.push(id);
    return id;
  };
  const conv = (name: string, type: 'pw' | 'dw' | 's', parent: number, c: number, f: number, hw: number, stride = 1): number => add({
    name, op: 'Conv', parents: parent < 0 ? [] : [parent], activation: type === 'dw' ? 'RELU6' : '0',
    type, ifms_shape: [c, hw * stride, hw * stride], ofms_shape: [f, hw, hw], strides: stride,
    weights_shape: type === 'pw' ? [f, c] : type === 'dw' ? [c, 3, 3] : [f, c, 3, 3], nodes: [name],
  });
  let x = conv('stem/Conv2D', 's', -1, 3, 16, 56, 2);
  for (let b = 0; b < blocks; b++) {
    const prefix = `model/backbone/stage_${Math.floor(b / 4)}/block_${b}/inverted_residual_with_linear_bottleneck`;
    const e = conv(`${prefix}/expand/Conv2D`, 'pw', x, 16, 96, 56);
    const d = conv(`${prefix}/depthwise/DepthwiseConv2dNative`, 'dw', e, 96, 96, 56);
    const p = conv(`${prefix}/project/Conv2D`, 'pw', d, 96, 16, 56);
    const parents = [p, x];
    if (b % 7 === 3) parents.push(conv(`${prefix}/shortcut/Conv2D`, 'pw', x, 16, 16, 56));
    x = add({ name: `${prefix}/add`, op: 'Add', parents, ifms_shape: [1, 16, 56, 56], ofms_shape: [1, 16, 56, 56], nodes: [`${prefix}/add`] });
  }
  return validateDag(dag, 'synthetic');
}

const fusedCount = (plan: Plan) => plan.modules.filter((m) => isFused(m.kind)).length;
const count = (s: string, needle: string) => s.split(needle).length - 1;

/** Runs main() with stderr captured (the report command prints only to stderr). */
async function cli(...args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((s: string | Uint8Array, ...rest: never[]) => {
    if (typeof s !== 'string') return write(s, ...rest);
    err += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'fcm-opt', ...args]), err };
  } finally {
    process.stderr.write = write;
  }
}

test('layout: 200+ layers, ranked top to bottom, with no overlapping boxes or labels', () => {
  const dag = syntheticDag(60);
  assert.ok(dag.length >= 200, `${dag.length} layers`);
  for (const mode of ['optimal', 'fuseplanner'] as const) {
    const plan = planFusion(dag, loadHw('h100'), { mode });
    const layout = layoutGraph(dag, plan);
    assert.deepEqual(overlaps(layout), [], mode);
    // Top to bottom: every child below its parents; side branches give ranks of two layers.
    for (const l of dag) for (const p of l.parents) assert.ok(layout.nodes[l.id].y >= layout.nodes[p].y + layout.nodes[p].h, `${p} -> ${l.id}`);
    assert.ok(new Set(layout.nodes.map((n) => n.column)).size >= 2);
    // One frame per fused module, around all of its layers.
    assert.equal(layout.frames.length, fusedCount(plan), mode);
    for (const f of layout.frames) {
      for (const id of plan.modules[f.module].layers) {
        const n = layout.nodes[id];
        assert.ok(f.rects.some((r) => r.x < n.x && r.y < n.y && r.x + r.w > n.x + n.w && r.y + r.h > n.y + n.h), `module ${f.module} frames layer ${id}`);
      }
    }
    // Long names are cut to their box, with the full name in the hover title.
    const long = layout.nodes[1];
    assert.ok(long.labels[0].text.endsWith('…'), long.labels[0].text);
    assert.ok(long.title[0].includes(dag[1].name));
  }
});

test('layout: the overlap check finds overlapping labels and boxes', () => {
  const dag = syntheticDag(3);
  const plan = planFusion(dag, loadHw('h100'), { mode: 'optimal' });
  const good = layoutGraph(dag, plan);
  assert.deepEqual(overlaps(good), []);
  const clone = (): GraphLayout => JSON.parse(JSON.stringify(good)) as GraphLayout;
  const labelOverlap = clone();
  labelOverlap.nodes[2].labels[1].y = labelOverlap.nodes[2].labels[0].y + 3;
  assert.ok(overlaps(labelOverlap).some(([a, b]) => a.startsWith('layer 2 label') && b.startsWith('layer 2 label')));
  const boxOverlap = clone();
  boxOverlap.nodes[3].y = boxOverlap.nodes[2].y + 10;
  assert.ok(overlaps(boxOverlap).some(([a, b]) => a.includes('box') && b.includes('box')));
  const frameLabel = clone();
  assert.ok(frameLabel.frames.length > 0);
  Object.assign(frameLabel.frames[0].label, { x: frameLabel.nodes[0].x + 4, y: frameLabel.nodes[0].y + 4 });
  assert.ok(overlaps(frameLabel).some(([a]) => a.startsWith(`module ${frameLabel.frames[0].module} label`)));
});

test('layout: FusePlanner pairs across branches and nested pairs stay readable (Xception)', () => {
  const dag = loadDag(join(dags, 'xce_r.json'));
  const plan = planFusion(dag, loadHw('rtxa4000'), { mode: 'fuseplanner' });
  const layout = layoutGraph(dag, plan);
  assert.deepEqual(overlaps(layout), []);
  assert.ok(layout.frames.some((f) => f.level > 0), 'nested frames');
  assert.ok(layout.frames.some((f) => f.rects.length > 1 && f.connector), 'a module drawn in pieces');
  assert.equal(layout.frames.length, fusedCount(plan));
});

test('page: one frame element per fused module, bars per module and totals, hover titles', () => {
  const dag = loadDag(join(dags, 'mob_v1.json'));
  const hw = loadHw('gtx1660');
  const plan = planFusion(dag, hw, { mode: 'fuseplanner', model: 'mob_v1.json' });
  const html = renderReport({ dag, plan, hw });
  assert.equal(count(html, 'data-fcm-frame='), fusedCount(plan));
  assert.equal(fusedCount(plan), 11);
  for (const kind of ['pwdw', 'dwpw']) assert.ok(html.includes(`data-kind="${kind}"`), kind);
  assert.equal(count(html, 'data-gma-row='), plan.modules.filter((m) => m.gma > 0 || m.gmaUnfused > 0).length);
  assert.equal(count(html, 'data-gma-total='), 2);
  assert.equal(count(html, 'data-layer='), dag.length);
  // Hover text of a fused module: its tiles and estimated GMA.
  const m = plan.modules.findIndex((x) => isFused(x.kind));
  const frame = html.slice(html.indexOf(`data-fcm-frame="${m}"`));
  assert.match(frame.slice(0, frame.indexOf('</title>')), /tiles [\dx.]+ d[\d.]+ f[\d.]+[\s\S]*estimated GMA [\d.]+[KMG]? elements \(unfused [\d.]+[KMG]?\)/);
  // Self-contained: nothing to fetch.
  assert.doesNotMatch(html, /<script|<link|<img|@import|url\((?!#)|https?:\/\/(?!www\.w3\.org\/2000\/svg)/);
  assert.match(html, /<p class="note">\d+ layers are in more than one fused pair/);
});

test('page: model-provided strings are escaped', () => {
  const evil = ['<script>alert(1)</script>', '"><img src=x onerror=alert(2)>', "'&amp;\u0000\u0007"];
  const dag = syntheticDag(2).map((l, i) => ({ ...l, name: evil[i % evil.length], nodes: [evil[(i + 1) % evil.length]], activation: i === 1 ? '<b>RELU</b>' : l.activation, op: i === 4 ? '<svg onload=alert(3)>' : l.op }));
  const hw = { ...loadHw('h100'), name: '<i>gpu</i>' };
  const plan = planFusion(validateDag(dag, 'evil'), hw, { mode: 'optimal', model: '</title><script>alert(4)</script>' });
  const bench: ReportBench = { device: '<u>dev</u>', results: [{ name: '<s>fused</s>', medianMs: 1, p90Ms: 2 }, { name: 'x', unavailable: '<b>no</b>' }], modules: [], modulesUnavailable: '<i>none</i>' };
  const html = renderReport({ dag, plan, hw, bench, generator: '<em onclick=x>' });
  for (const bad of ['<script', '<img', '<svg onload', '<b>RELU', '<i>gpu', '<u>dev', '<s>fused', '<b>no', '<i>none', '\u0000', '\u0007', '<em onclick']) {
    assert.ok(!html.includes(bad), `unescaped ${JSON.stringify(bad)}`);
  }
  assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
  assert.ok(html.includes('<title>fcm-opt report: &lt;/title&gt;&lt;script&gt;alert(4)&lt;/script&gt;</title>'));
  assert.ok(html.includes('&quot;&gt;&lt;img src=x onerror=alert(2)&gt;'));
  assert.equal(esc(`<a href="x" title='y'>&`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;');
});

test('page: bench figures, latency bars and the per-module scatter', () => {
  const dag = loadDag(join(dags, 'mob_v1.json'));
  const hw = loadHw('h100');
  const plan = planFusion(dag, hw, { mode: 'optimal', model: 'mob_v1.json' });
  // Figures made up for the drawing only: the page must show what it is given.
  const modules = plan.modules.map((m, i) => ({ module: i, gma: m.gma, gmaUnfused: m.gmaUnfused, fusedGpuMs: m.gma / 1e8, unfusedGpuMs: i % 2 === 0 ? m.gmaUnfused / 1e8 : undefined }));
  const bench: ReportBench = {
    device: 'test device', runs: 5, batch: 1, modules,
    results: [{ name: 'fcm-opt fused', medianMs: 1.5, p90Ms: 1.7 }, { name: 'fcm-opt unfused', medianMs: 2.5, p90Ms: 2.9 }, { name: 'onnxruntime webgpu', unavailable: 'no adapter' }, { name: 'onnxruntime cpu', medianMs: 4, p90Ms: 4.4 }],
  };
  const html = renderReport({ dag, plan, hw, bench });
  assert.equal(count(html, 'data-latency='), 4);
  assert.match(html, /2\.50 ms \(1\.67x fused\)/);
  assert.match(html, /unavailable: no adapter/);
  const withGma = modules.filter((m) => m.gma > 0);
  assert.equal(count(html, 'data-run="fused"'), withGma.length);
  assert.equal(count(html, 'data-run="unfused"'), modules.filter((m) => m.unfusedGpuMs !== undefined && m.gmaUnfused > 0).length);
  assert.match(html, /<svg id="module-scatter"/);
});

test('reportBench: takes the bench\'s modules when they are the plan\'s, refuses others', () => {
  const dag = loadDag(join(dags, 'mob_v1.json'));
  const plan = planFusion(dag, loadHw('h100'), { mode: 'optimal', model: 'mob_v1.json' });
  const report: BenchReport = {
    model: 'm.onnx', hw: 'h100', device: 'llvmpipe (LLVM 19)', batch: 1, runs: 3, warmup: 1, block: 1,
    results: [{ name: 'fcm-opt fused', medianMs: 2, p90Ms: 3 }],
    layers: [
      ...plan.modules.map((m, i) => ({ module: i, kind: m.kind, nodes: [...(m.nodes ?? [])], gma: m.gma, gmaUnfused: m.gmaUnfused, fusedGpuMs: 0.1 })),
      { module: null, kind: 'Add', nodes: ['add_1'], fusedGpuMs: 0.01 },
    ],
  };
  const b = reportBench(report, plan);
  assert.equal(b.modules.length, plan.modules.length);
  assert.match(b.note ?? '', /software rasterizer/);
  const other = { ...report, layers: [{ ...report.layers[0], kind: 'pwpw' }] };
  assert.throws(() => reportBench(other, plan), /not the report's plan module/);
});

test('cli: report writes the page atomically; bad input exits 2 and leaves no file', async () => {
  const model = fixtureModel();
  const dir = mkdtempSync(join(tmp, 'cli-'));
  const out = join(dir, 'report.html');
  const ok = await cli('report', model, '--hw', 'h100', '-o', out);
  assert.equal(ok.code, 0, ok.err);
  const html = readFileSync(out, 'utf8');
  assert.match(html, /^<!DOCTYPE html>/);
  assert.match(html, /fcm-opt report: mobilenetv2_stack\.onnx/);
  assert.deepEqual(readdirSync(dir), ['report.html'], 'no temporary file left');

  const missing = join(dir, 'no-such-folder', 'r.html');
  const r1 = await cli('report', model, '--hw', 'h100', '-o', missing);
  assert.equal(r1.code, 2, r1.err);
  assert.match(r1.err, /^fcm-opt: -o .*no-such-folder.*cannot create the output file/);
  const r2 = await cli('report', model, '--hw', 'no-such-gpu', '-o', join(dir, 'r2.html'));
  assert.equal(r2.code, 2);
  assert.match(r2.err, /no-such-gpu: no such hardware description/);
  const r3 = await cli('report', model, '--hw', 'h100', '-o', model);
  assert.equal(r3.code, 2);
  assert.match(r3.err, /refusing to overwrite it/);
  const r4 = await cli('report', join(dags, 'mob_v1.json'), '--hw', 'h100', '--bench', '-o', join(dir, 'r4.html'));
  assert.equal(r4.code, 2);
  assert.match(r4.err, /--bench: measurements need an \.onnx model/);
  const r5 = await cli('report', model, '--hw', 'h100', '--bench', '--mode', 'fuseplanner', '-o', join(dir, 'r5.html'));
  assert.equal(r5.code, 2);
  assert.match(r5.err, /--bench: measures the optimal plan/);
  assert.deepEqual(readdirSync(dir), ['report.html']);
  // A layer DAG works too, in either mode.
  const r6 = await cli('report', join(dags, 'gprox_3.json'), '--hw', 'orin', '--mode', 'fuseplanner', '-o', join(dir, 'g.html'));
  assert.equal(r6.code, 0, r6.err);
});

// ---- in a real browser -------------------------------------------------------------------------------------

/** In the page: pairs of overlapping text boxes of the graph, as the browser lays the text out. */
const textOverlapsInPage = `(() => {
  const boxes = [...document.querySelectorAll('#graph text')].map((t) => ({ t: t.textContent, b: t.getBBox() }));
  boxes.sort((a, b) => a.b.y - b.b.y);
  const hits = [];
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length && boxes[j].b.y < boxes[i].b.y + boxes[i].b.height; j++) {
      const a = boxes[i].b, b = boxes[j].b;
      if (a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height - 0.5 && b.y < a.y + a.height - 0.5) hits.push(boxes[i].t + ' / ' + boxes[j].t);
    }
  }
  const layers = [...document.querySelectorAll('#graph [data-layer]')];
  const outside = layers.filter((g) => { const r = g.querySelector('rect').getBBox(); return [...g.querySelectorAll('text')].some((t) => { const b = t.getBBox(); return b.x < r.x || b.x + b.width > r.x + r.width; }); }).length;
  return { texts: boxes.length, hits, outside };
})()`;

const browserSkip = haveChromium() ? false : `${chromiumPath} is absent (Debian package 'chromium'); the report is not checked in a browser`;

test('browser: the fixture model\'s report renders without errors, requests or overlapping text', { skip: browserSkip, timeout: 120_000 }, async () => {
  const model = fixtureModel();
  const out = join(tmp, 'fixture-report.html');
  writeFileSync(out, await makeReport(model, { hw: 'h100' }));
  const hw = loadHw('h100');
  const plan = planFusion(toDag(await loadModel(model)), hw, { mode: 'optimal' });
  assert.ok(fusedCount(plan) >= 2, 'the fixture has fused modules to draw');

  const page = await Page.open(1360, 1000);
  try {
    const url = pathToFileURL(out).href;
    await page.goto(url);
    const dom = await page.evaluate<{ frames: number; kinds: string[]; layers: number; svgW: number; titles: number; bars: number }>(`({
      frames: document.querySelectorAll('#graph [data-fcm-frame]').length,
      kinds: [...document.querySelectorAll('#graph [data-fcm-frame]')].map((f) => f.getAttribute('data-kind')),
      layers: document.querySelectorAll('#graph [data-layer]').length,
      svgW: document.querySelector('#graph').getBoundingClientRect().width,
      titles: document.querySelectorAll('#graph [data-fcm-frame] > title').length,
      bars: document.querySelectorAll('#gma-chart [data-gma-row]').length,
    })`);
    assert.equal(dom.frames, fusedCount(plan));
    assert.deepEqual([...dom.kinds].sort(), plan.modules.filter((m) => isFused(m.kind)).map((m) => m.kind).sort());
    assert.equal(dom.titles, dom.frames);
    assert.ok(dom.layers > 0 && dom.svgW > 200);
    assert.equal(dom.bars, plan.modules.filter((m) => m.gma > 0 || m.gmaUnfused > 0).length);
    // Every frame encloses its layers as the browser draws them.
    const enclosed = await page.evaluate<Array<{ layers: number; inside: number }>>(`[...document.querySelectorAll('#graph [data-fcm-frame]')].map((f) => {
      const rs = [...f.querySelectorAll(':scope > rect')].map((r) => r.getBBox());
      const ids = f.getAttribute('data-layers').split(' ');
      const inside = ids.filter((id) => {
        const b = document.querySelector('#graph [data-layer="' + id + '"] > rect').getBBox();
        return rs.some((r) => r.x < b.x && r.y < b.y && r.x + r.width > b.x + b.width && r.y + r.height > b.y + b.height);
      }).length;
      return { layers: ids.length, inside };
    })`);
    assert.equal(enclosed.length, dom.frames);
    for (const e of enclosed) assert.ok(e.layers >= 2 && e.inside === e.layers, JSON.stringify(e));
    const text = await page.evaluate<{ texts: number; hits: string[]; outside: number }>(textOverlapsInPage);
    assert.ok(text.texts > 3 * dom.layers / 2, `${text.texts} text elements`);
    assert.deepEqual(text.hits, []);
    assert.equal(text.outside, 0, 'text runs out of its layer box');
    const png = await page.screenshot();
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.equal(png.readUInt32BE(16), 1360);
    assert.equal(png.readUInt32BE(20), 1000);
    // docs/report-screenshot.png is this picture: FCM_REPORT_SCREENSHOT=docs/report-screenshot.png.
    if (process.env.FCM_REPORT_SCREENSHOT) writeFileSync(process.env.FCM_REPORT_SCREENSHOT, png);
    assert.deepEqual(page.errors, []);
    assert.deepEqual(page.requests.filter((u) => u !== url), [], 'the page fetched something');
  } finally {
    await page.close();
  }
});

test('browser: a 200+ layer report scrolls and keeps its text apart; hostile names stay text', { skip: browserSkip, timeout: 120_000 }, async () => {
  const evil = '<img src=x onerror="document.title=\'pwned\'">';
  const dag = syntheticDag(60).map((l, i) => (i === 5 ? { ...l, name: evil, nodes: [evil] } : l));
  const hw = loadHw('h100');
  const plan = planFusion(dag, hw, { mode: 'fuseplanner', model: evil });
  const out = join(tmp, 'large-report.html');
  writeFileSync(out, renderReport({ dag, plan, hw }));
  const page = await Page.open(1200, 900);
  try {
    await page.goto(pathToFileURL(out).href);
    const r = await page.evaluate<{ frames: number; imgs: number; title: string; scrolls: boolean; overflow: string }>(`(() => {
      const s = document.querySelector('#graph').parentElement;
      return { frames: document.querySelectorAll('#graph [data-fcm-frame]').length, imgs: document.querySelectorAll('img').length,
        title: document.title, scrolls: s.scrollHeight > s.clientHeight, overflow: getComputedStyle(s).overflowY };
    })()`);
    assert.equal(r.frames, fusedCount(plan));
    assert.equal(r.imgs, 0);
    assert.ok(r.title.includes(evil), r.title);
    assert.ok(r.scrolls && r.overflow === 'auto', 'the graph scrolls in its own box');
    const text = await page.evaluate<{ texts: number; hits: string[]; outside: number }>(textOverlapsInPage);
    assert.ok(text.texts > 600);
    assert.deepEqual(text.hits, []);
    assert.equal(text.outside, 0);
    assert.deepEqual(page.errors, []);
  } finally {
    await page.close();
  }
});

test('browser: the checks see console errors, exceptions and requests (the driver works)', { skip: browserSkip, timeout: 60_000 }, async () => {
  const out = join(tmp, 'broken.html');
  writeFileSync(out, '<!DOCTYPE html><title>t</title><script>console.error("boom"); null.x;</script><img src="http://127.0.0.1:9/x.png">');
  const page = await Page.open(400, 300);
  try {
    await page.goto(pathToFileURL(out).href);
    assert.ok(page.errors.some((e) => e.includes('boom')), page.errors.join('\n'));
    assert.ok(page.errors.some((e) => e.startsWith('exception:')), page.errors.join('\n'));
    assert.ok(page.requests.includes('http://127.0.0.1:9/x.png'), page.requests.join('\n'));
  } finally {
    await page.close();
  }
});

test('--bench: the bench\'s plan is the page\'s; its figures land on the page', { timeout: 300_000 }, async () => {
  const model = fixtureModel();
  const graph = await loadModel(model);
  // fcm-opt's own runtime replaced by a stand-in that reports a GPU time per node (so this test needs no
  // WebGPU kernels); onnxruntime's rows are real runs (or marked unavailable where a provider cannot start).
  const createSession = async (_m: string | Uint8Array, o: { plan: Plan | 'unfused' }) => ({
    run: async () => Object.fromEntries(graph.outputs.map((y) => [y, new Float32Array(1)])),
    profile: () => (o.plan === 'unfused'
      ? graph.nodes.filter((n) => n.op === 'Conv').map((n) => ({ node: n.name, gpuUs: 7 }))
      : o.plan.modules.map((m) => ({ node: (m.nodes ?? [])[0], gpuUs: 3 + m.layers.length }))),
    dispose: () => undefined,
  });
  const html = await makeReport(model, { hw: 'h100', bench: true, benchOptions: { runs: 2, warmup: 0, createSession } });
  assert.equal(count(html, 'data-latency='), 4);
  assert.match(html, /fcm-opt fused/);
  assert.match(html, /onnxruntime cpu/);
  const plan = planFusion(toDag(graph), loadHw('h100'), { mode: 'optimal', dtypeBytes: 4 });
  assert.equal(count(html, 'data-run="fused"'), plan.modules.filter((m) => m.gma > 0).length);
  for (const [i, m] of plan.modules.entries()) {
    if (m.gma > 0) assert.ok(html.includes(`data-scatter="${i}" data-run="fused"`), `module ${i}`);
  }
  assert.match(html, /5\.0 us measured/); // a fused pair: 3 + 2 us in the stand-in's profile
});

test('cli: report --bench measures with fcm-opt\'s WebGPU runtime and onnxruntime', { timeout: 300_000 }, async () => {
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const model = fixtureModel();
  const out = join(mkdtempSync(join(tmp, 'bench-')), 'bench.html');
  const r = await cli('report', model, '--hw', 'h100', '--bench', '--runs', '1', '-o', out);
  assert.equal(r.code, 0, r.err);
  const html = readFileSync(out, 'utf8');
  const rows = [...html.matchAll(/data-latency="\d"><title>([^<]*)/g)].map((m) => m[1]);
  assert.equal(rows.length, 4);
  assert.match(rows[0], /^fcm-opt fused: median [\d.]+ ms/);
  assert.match(rows[1], /^fcm-opt unfused: median [\d.]+ ms/);
  const plan = planFusion(toDag(await loadModel(model, { batch: 1 })), loadHw('h100'), { mode: 'optimal', dtypeBytes: 4 });
  for (const [i, m] of plan.modules.entries()) {
    if (m.gma > 0) assert.ok(html.includes(`data-scatter="${i}" data-run="fused"`), `module ${i} has its GPU time`);
  }
});
