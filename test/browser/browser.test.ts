// The browser build (scripts/build-browser.mjs -> fcm-opt.mjs) in headless Chromium on its own WebGPU adapter
// (Debian's Chromium: SwiftShader's Vulkan), against the Node build on Dawn/lavapipe: the same models with the same
// plans give the same outputs. Models: a MobileNetV2-style ONNX (fused and unfused), an int8 TFLite on the integer
// kernels, and fcm-opt's optimized .onnx of the first (plan read back from the file in the page).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromiumPath, runHeadlessPage, webgpuFlags } from '../../src/bench/headless-page.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { mobileNetV2Stack } from '../../fixtures/models.js';
import { buildSeedMobileNetV1 } from '../../fixtures/tflite-builder.js';
import { loadModel } from '../../src/graph/load.js';
import { loadHw } from '../../src/planner/hw.js';
import type { Plan } from '../../src/planner/plan.js';
import { planFor, planningInput, rewrite } from '../../src/pipeline/pipeline.js';
import { createSession } from '../../src/pipeline/session.js';
import { exportOptimized } from '../../src/export/optimized.js';
import { readOptimized } from '../../src/export/read-optimized.js';
import { releaseGpu } from '../../src/runtime/device.js';
import { seededInput } from '../../src/runtime/compare.js';

const skip = existsSync(chromiumPath()) ? false : `${chromiumPath()} is absent (Debian package 'chromium')`;
const root = process.cwd();
let bundle: Uint8Array;

before(() => {
  if (skip) return;
  const out = mkdtempSync(join(tmpdir(), 'fcm-browser-build-'));
  execFileSync(process.execPath, [join(root, 'scripts/build-browser.mjs'), '--outdir', out], { stdio: 'pipe' });
  bundle = readFileSync(join(out, 'fcm-opt.mjs'));
});
after(releaseGpu);

interface Job { name: string; url: string; bytes: Uint8Array; plan: Plan | 'unfused'; optimized?: boolean }
interface PageResult { name: string; path: string; fcms: number; outputs: Record<string, { shape: number[]; data: number[] }> }

/** What the Node build computes for a job (the same plan, seeded inputs seed i for input i). */
async function nodeRun(j: Job) {
  const session = j.optimized
    ? await createSession((await readOptimized(j.bytes, { source: j.url })).graph, { plan: 'unfused' })
    : await createSession(j.bytes, { plan: j.plan });
  try {
    const feeds: Record<string, Float32Array> = {};
    session.inputNames.forEach((x, i) => { feeds[x] = seededInput(session.inputShapes[x].reduce((a, b) => a * b, 1), i); });
    return { path: session.path, outputs: await session.run(feeds) };
  } finally {
    session.dispose();
  }
}

test('the browser bundle runs ONNX (fused, unfused, optimized file) and int8 TFLite models as Node does', { skip, timeout: 600_000 }, async () => {
  const hw = loadHw('lavapipe');
  const onnx = exportOnnx(mobileNetV2Stack());
  const g = await loadModel(onnx, { source: 'mbv2-stack.onnx' });
  const pin = planningInput(g, hw, false);
  const plan = planFor(pin, { model: 'mbv2-stack.onnx' });
  assert.ok(plan.modules.some((m) => m.layers.length > 1), 'the plan fuses something');
  const optimized = exportOptimized(rewrite(pin.graph, 'fp32', plan), plan);
  const tflite = buildSeedMobileNetV1(7, 32);
  const tg = await loadModel(tflite, { source: 'int8.tflite' });
  const tplan = planFor(planningInput(tg, hw, true), { model: 'int8.tflite' });
  const jobs: Job[] = [
    { name: 'onnx fused', url: '/m/mbv2-stack.onnx', bytes: onnx, plan },
    { name: 'onnx unfused', url: '/m/mbv2-stack.onnx', bytes: onnx, plan: 'unfused' },
    { name: 'optimized onnx', url: '/m/mbv2-stack.fcm.onnx', bytes: optimized, plan: 'unfused', optimized: true },
    { name: 'int8 tflite', url: '/m/int8.tflite', bytes: tflite, plan: tplan },
  ];
  const files = new Map<string, string | Uint8Array>([
    ['/page.html', readFileSync(join(root, 'test/browser/page.html'))],
    ['/fcm-opt.mjs', bundle],
    ['/job.json', JSON.stringify({ models: jobs.map(({ bytes: _b, ...j }) => j) })],
    ...jobs.map((j) => [j.url, j.bytes] as [string, Uint8Array]),
  ]);
  const r = (await runHeadlessPage((p) => files.get(p), { flags: webgpuFlags, timeoutMs: 300_000 })) as
    { ok: true; adapter: Record<string, string>; results: PageResult[] } | { ok: false; error: string };
  assert.ok(r.ok, r.ok ? '' : r.error);
  for (const j of jobs) {
    const page: PageResult = r.results.find((x) => x.name === j.name)!;
    const node = await nodeRun(j);
    assert.equal(page.path, node.path, `${j.name}: same executor path`);
    if (j.name === 'int8 tflite') assert.equal(node.path, 'int8', 'the integer kernels run it');
    if (j.name !== 'onnx unfused') assert.ok(page.fcms >= 1, `${j.name}: runs FCMs`);
    for (const [y, want] of Object.entries(node.outputs)) {
      const got = page.outputs[y];
      assert.deepEqual(got.shape, want.shape, `${j.name} ${y}`);
      let max = 0;
      for (let i = 0; i < want.data.length; i++) max = Math.max(max, Math.abs(got.data[i] - want.data[i]));
      // The same WGSL and the same plan on two Vulkan drivers (SwiftShader in Chromium, lavapipe in Node): float
      // sums in the same order, so only the drivers' own float contraction may differ (1e-5, the issue's bound);
      // the integer path is exact arithmetic, so its dequantized outputs agree exactly.
      const bound = node.path === 'int8' ? 0 : 1e-5;
      assert.ok(max <= bound, `${j.name} ${y}: max |browser - node| ${max} > ${bound} (adapter ${JSON.stringify(r.adapter)})`);
    }
  }
});
