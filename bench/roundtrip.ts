// How a run learns that the GPU has finished, and what the host spends around the kernels, apart from any model.
//
// Dawn for Node (npm `webgpu`) settles every GPU promise (onSubmittedWorkDone, mapAsync, popErrorScope) from a
// setImmediate callback that calls wgpuInstanceProcessEvents and schedules itself again while any such promise is
// pending: one poll per turn of Node's event loop, no timer. Dawn's Vulkan backend records its command stream into a
// VkCommandBuffer inside queue.submit (barriers and descriptor sets per dispatch), then vkQueueSubmit with a fence,
// then ticks the device; the poll reads the fences. So the figures here:
//
//   latency  submit -> promise: nothing submitted (the poll alone), an empty command buffer, a 256-byte copy then
//            mapAsync or onSubmittedWorkDone; each with the host idle while it waits and with a setImmediate chain
//            spinning meanwhile ('spin': it counts the event-loop turns and their period while Dawn polls). turnUs
//            is the median time between two turns while waiting: the most a finished GPU can wait for its poll.
//   chain    K dependent dispatches of a small kernel (each reads what the one before wrote, as a model's layers do)
//            in one compute pass, encoded before the timing: queue.submit's host time (Dawn's recording + vkQueueSubmit
//            + tick), then submit -> mapAsync of the pass's timestamps; gpuUs from the timestamps (where the adapter
//            has them); aroundUs = submit + wait - GPU: what the host and the poll add to the GPU's own time.
//   calls    the host's cost of each call a run makes per dispatch (setPipeline, setBindGroup, dispatchWorkgroups,
//            and the three together), `--calls` of each in one open pass, never submitted: the JS -> Dawn part of a
//            dispatch's host cost (the chain's submitUs / K is the rest, Dawn's recording).
//   split    the same chain of `--split-chain` dispatches submitted in parts (each part its own command buffer and
//            queue.submit, as run() submits every `submitEvery` dispatches), against all in one, and the parts in one
//            queue.submit call: a part lets the GPU start while Dawn records the next; a submit costs the host its
//            fixed part and the GPU a gap. gpuUs spans the first part's start to the last part's end.
//   model    with --model NAME (an .onnx file, a zoo model, fixtures/zoo.ts, or a fixture model, fixtures/models.ts;
//            batch 1, fused plan for --hw): run() with host arrays in and out, and GPU-resident (a GPUBuffer in, the output
//            copied to a GPUBuffer, then onSubmittedWorkDone), each idle while it waits and with a setImmediate chain
//            spinning around it; waitUs is the whole call here (submitUs 0). Then 'model-split': the session's own
//            dispatches (executor.ts `dispatches`, one inference) cut as in 'split', with timestamps: what submitting
//            that model in parts costs the host and the GPU, and aroundUs for the real kernels. And the timeline of
//            one run() (queue.submit wrapped): when the first submit starts (the host work before the GPU can start:
//            feeds checked and written, the first part's commands), what it takes, when the last returns, when the
//            call settles.
//
// Medians over `--reps` repetitions after `--warmup`, the variants of a section interleaved rep by rep.
//
// Run (GPU machine, see BENCHMARKS.md): npm run build; then on the device
//   source .gpu/enter.sh && node dist/bench/roundtrip.js --out $OUT [--reps 300] [--work 64] [--chains 1,12,37,96]
// Here on lavapipe (figures differ from a GPU's: lavapipe runs the "GPU" on the same CPU cores):
//   XDG_RUNTIME_DIR=/tmp node dist/bench/roundtrip.js --reps 200 --work 4 --elements 4096
// Writes <out>/roundtrip.json when --out is given, and prints a table.

import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { tmpdir } from 'node:os';
import { acquireGpu, describeDevice, releaseGpu } from '../src/runtime/device.js';
import { median, percentile } from '../src/bench/stats.js';
import { zooModels } from '../fixtures/zoo.js';
import { fixtureModels } from '../fixtures/models.js';
import { exportOnnx } from '../converters/onnx/export.js';
import { loadModel } from '../src/graph/load.js';
import { loadHw } from '../src/planner/hw.js';
import { planFusion } from '../src/planner/index.js';
import { toDag } from '../src/planner/to-dag.js';
import { createSession } from '../src/pipeline/session.js';
import { executorOf } from '../src/runtime/executor.js';
import { benchInputs } from '../src/bench/bench.js';
import { batchOf } from '../src/graph/util.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const reps = Number(arg('reps', '300'));
const warmup = Number(arg('warmup', '30'));
// Loop iterations per invocation and elements per dispatch of the chain kernel (64 x 65536: ~5-10 us a dispatch on
// an H100, about a MobileNetV2 layer at batch 1).
const work = Number(arg('work', '64'));
const elements = Number(arg('elements', '65536'));
const chains = arg('chains', '1,12,37,96').split(',').map(Number);
const splitChain = Number(arg('split-chain', '36'));
const out = arg('out', '');
const modelName = arg('model', '');
const hwName = arg('hw', 'h100');

interface Row {
  section: string; variant: string; wait: 'idle' | 'spin';
  /** queue.submit host time (all calls of a rep), us. */
  submitUs: number;
  /** From the last submit's return to the promise resolving, us (median, p90). */
  waitUs: number; waitP90Us: number;
  /** GPU time from timestamps, us (chain and split; absent without timestamp queries). */
  gpuUs?: number;
  /** submit + wait - GPU, us. */
  aroundUs?: number;
  /** With 'spin': event-loop turns while waiting, and the median time between two turns, us. */
  turns?: number; turnUs?: number;
}

const ctx = await acquireGpu();
const d = ctx.device;
const G = GPUBufferUsage;
console.log(`device: ${ctx.adapterInfo.description || ctx.adapterInfo.vendor}; ${describeDevice(ctx)}`);
console.log(`reps ${reps} (warm-up ${warmup}); chain kernel: ${elements} elements, ${work} iterations each`);

/** A setImmediate chain, started while the host waits: counts turns of the event loop and the time between them. */
class Spin {
  private on = false;
  private stamps: number[] = [];
  start(): void {
    this.on = true;
    this.stamps = [];
    const step = () => {
      if (!this.on) return;
      this.stamps.push(performance.now());
      setImmediate(step);
    };
    setImmediate(step);
  }
  stop(): { turns: number; periods: number[] } {
    this.on = false;
    const s = this.stamps;
    return { turns: s.length, periods: s.slice(1).map((t, i) => t - s[i]) };
  }
}

/** One repetition: prepare (untimed: encoding), submit (timed: the queue.submit calls), then the promise to await. */
interface Variant {
  name: string; wait: 'idle' | 'spin';
  prepare(): () => { done: Promise<unknown>; submitMs: number };
  /** GPU time (ms) of the last repetition, read after `done`. */
  gpuMs?(): Promise<number | undefined> | number | undefined;
}

async function section(name: string, variants: Variant[]): Promise<Row[]> {
  const acc = variants.map(() => ({ submit: [] as number[], wait: [] as number[], gpu: [] as number[], turns: [] as number[], periods: [] as number[] }));
  const spin = new Spin();
  for (let r = 0; r < warmup + reps; r++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[i];
      const submit = v.prepare();
      const { done, submitMs } = submit();
      const t1 = performance.now();
      if (v.wait === 'spin') spin.start();
      await done;
      const t2 = performance.now();
      const s = v.wait === 'spin' ? spin.stop() : undefined;
      const g = v.gpuMs ? await v.gpuMs() : undefined;
      if (r < warmup) continue;
      const a = acc[i];
      a.submit.push(submitMs);
      a.wait.push(t2 - t1);
      if (g !== undefined) a.gpu.push(g);
      // A loop, not push(...): a slow GPU gives more turns than a call takes arguments.
      if (s) { a.turns.push(s.turns); for (const p of s.periods) a.periods.push(p); }
    }
  }
  const us = (ms: number) => 1000 * ms;
  return variants.map((v, i) => {
    const a = acc[i];
    const row: Row = { section: name, variant: v.name, wait: v.wait, submitUs: us(median(a.submit)), waitUs: us(median(a.wait)), waitP90Us: us(percentile(a.wait, 90)) };
    if (a.gpu.length) {
      row.gpuUs = us(median(a.gpu));
      // Per repetition, then the median: submit and wait of one rep against its own GPU time.
      row.aroundUs = us(median(a.submit.map((s, k) => s + a.wait[k] - a.gpu[k])));
    }
    if (a.turns.length) {
      row.turns = median(a.turns);
      if (a.periods.length) row.turnUs = us(median(a.periods));
    }
    return row;
  });
}

const rows: Row[] = [];

// The event loop alone: one setImmediate turn, nothing pending on the GPU.
{
  const periods: number[] = [];
  for (let r = 0; r < warmup + reps; r++) {
    const t0 = performance.now();
    await new Promise<void>((res) => setImmediate(res));
    if (r >= warmup) periods.push(performance.now() - t0);
  }
  rows.push({ section: 'loop', variant: 'one setImmediate turn', wait: 'idle', submitUs: 0, waitUs: 1000 * median(periods), waitP90Us: 1000 * percentile(periods, 90) });
}

// Submit -> promise.
{
  const src = d.createBuffer({ size: 256, usage: G.STORAGE | G.COPY_SRC, label: 'roundtrip src' });
  const dst = d.createBuffer({ size: 256, usage: G.MAP_READ | G.COPY_DST, label: 'roundtrip read' });
  const variants: Variant[] = [];
  for (const wait of ['idle', 'spin'] as const) {
    variants.push(
      { name: 'nothing submitted: onSubmittedWorkDone', wait, prepare: () => () => ({ done: d.queue.onSubmittedWorkDone(), submitMs: 0 }) },
      {
        name: 'empty command buffer: onSubmittedWorkDone', wait,
        prepare: () => { const cb = d.createCommandEncoder().finish(); return () => { const t0 = performance.now(); d.queue.submit([cb]); const submitMs = performance.now() - t0; return { done: d.queue.onSubmittedWorkDone(), submitMs }; }; },
      },
      {
        name: '256 B copy: mapAsync', wait,
        prepare: () => {
          const e = d.createCommandEncoder();
          e.copyBufferToBuffer(src, 0, dst, 0, 256);
          const cb = e.finish();
          return () => {
            const t0 = performance.now();
            d.queue.submit([cb]);
            const submitMs = performance.now() - t0;
            return { done: dst.mapAsync(GPUMapMode.READ).then(() => dst.unmap()), submitMs };
          };
        },
      },
      {
        name: '256 B copy: onSubmittedWorkDone', wait,
        prepare: () => {
          const e = d.createCommandEncoder();
          e.copyBufferToBuffer(src, 0, dst, 0, 256);
          const cb = e.finish();
          return () => { const t0 = performance.now(); d.queue.submit([cb]); const submitMs = performance.now() - t0; return { done: d.queue.onSubmittedWorkDone(), submitMs }; };
        },
      },
    );
  }
  rows.push(...await section('latency', variants));
  src.destroy();
  dst.destroy();
}

// The chain kernel: y = x, then `work` fma steps; two buffers, each dispatch reading what the one before wrote.
const wgsl = `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  let i = g.x;
  if (i >= arrayLength(&y)) { return; }
  var v = x[i];
  for (var k = 0u; k < ${work}u; k++) { v = fma(v, 0.999, 0.001); }
  y[i] = v;
}`;
const pipeline = d.createComputePipeline({ layout: 'auto', compute: { module: d.createShaderModule({ code: wgsl }), entryPoint: 'main' }, label: 'roundtrip chain' });
const bufs = [0, 1].map((k) => d.createBuffer({ size: 4 * elements, usage: G.STORAGE, label: `roundtrip chain ${k}` }));
const groups = [0, 1].map((k) => d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: bufs[k] } }, { binding: 1, resource: { buffer: bufs[1 - k] } }] }));
const workgroups = Math.ceil(elements / 64);

/** What a dispatch needs (src/runtime/gpu.ts Dispatch): the chain's, or a session's own. */
interface Dispatch { pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; size: readonly [number, number, number] }
const chainOf = (n: number): Dispatch[] => Array.from({ length: n }, (_, k) => ({ pipeline, bindGroup: groups[k % 2], size: [workgroups, 1, 1] }));

const ts = ctx.timestamps ? {
  set: d.createQuerySet({ type: 'timestamp', count: 2 }),
  resolve: d.createBuffer({ size: 16, usage: G.QUERY_RESOLVE | G.COPY_SRC, label: 'roundtrip timestamps' }),
} : undefined;
const readTs = d.createBuffer({ size: 16, usage: G.MAP_READ | G.COPY_DST, label: 'roundtrip timestamps read' });

/** Command buffers of `list` cut in `parts` (dispatch counts), each one compute pass; the first pass writes the start
 *  timestamp, the last the end, and the last command buffer copies them to `readTs`. */
function encodeParts(list: readonly Dispatch[], parts: readonly number[]): GPUCommandBuffer[] {
  const cbs: GPUCommandBuffer[] = [];
  let k = 0;
  parts.forEach((n, p) => {
    const enc = d.createCommandEncoder();
    const end = p === parts.length - 1;
    const timestampWrites = ts && (p === 0 || end)
      ? { querySet: ts.set, ...(p === 0 ? { beginningOfPassWriteIndex: 0 } : {}), ...(end ? { endOfPassWriteIndex: 1 } : {}) }
      : undefined;
    const pass = enc.beginComputePass(timestampWrites ? { timestampWrites } : {});
    let last: GPUComputePipeline | undefined;
    for (let i = 0; i < n; i++, k++) {
      const x = list[k];
      if (x.pipeline !== last) pass.setPipeline(x.pipeline);
      last = x.pipeline;
      pass.setBindGroup(0, x.bindGroup);
      pass.dispatchWorkgroups(x.size[0], x.size[1], x.size[2]);
    }
    pass.end();
    if (p === parts.length - 1) {
      if (ts) {
        enc.resolveQuerySet(ts.set, 0, 2, ts.resolve, 0);
        enc.copyBufferToBuffer(ts.resolve, 0, readTs, 0, 16);
      } else {
        // Something for mapAsync to wait on: the same copy, of no data that matters.
        enc.copyBufferToBuffer(bufs[0], 0, readTs, 0, 16);
      }
    }
    cbs.push(enc.finish());
  });
  return cbs;
}

/** `list` in `parts`, one queue.submit each (or all in one call), then mapAsync of readTs. */
function partsVariant(name: string, list: readonly Dispatch[], parts: readonly number[], wait: 'idle' | 'spin', oneCall = false): Variant {
  let gpu: number | undefined;
  return {
    name, wait,
    prepare: () => {
      const cbs = encodeParts(list, parts);
      return () => {
        const t0 = performance.now();
        if (oneCall) d.queue.submit(cbs);
        else for (const cb of cbs) d.queue.submit([cb]);
        const submitMs = performance.now() - t0;
        const done = readTs.mapAsync(GPUMapMode.READ).then(() => {
          if (ts) {
            const t = new BigUint64Array(readTs.getMappedRange(0, 16));
            gpu = t[1] > t[0] ? Number(t[1] - t[0]) / 1e6 : undefined;
          }
          readTs.unmap();
        });
        return { done, submitMs };
      };
    },
    gpuMs: () => gpu,
  };
}

// Host encode cost of a chain (JS -> Dawn's command stream; what encodeAhead moves off the critical path).
const encodeUs = new Map<number, number>();
/** With --model: the host's timeline of one run() (model section). */
const timeline: { variant: string; firstSubmitAtUs: number; firstSubmitUs: number; lastSubmitDoneAtUs: number; settledAtUs: number; submits: number }[] = [];
for (const k of chains) {
  const t: number[] = [];
  for (let r = 0; r < Math.max(20, reps / 5); r++) {
    const t0 = performance.now();
    const cbs = encodeParts(chainOf(k), [k]);
    t.push(performance.now() - t0);
    void cbs;
  }
  encodeUs.set(k, 1000 * median(t));
}

// Host cost of each call a run makes per dispatch (us a call, median of 5 loops of `calls` calls in one open pass, never
// submitted): what a dispatch costs the host before Dawn records it at submit. Two pipelines and bind groups alternate,
// as a run's do.
const callCount = Number(arg('calls', '2000'));
const pipeline2 = d.createComputePipeline({ layout: 'auto', compute: { module: d.createShaderModule({ code: `${wgsl}\n// second` }), entryPoint: 'main' }, label: 'roundtrip chain 2' });
const groups2 = [0, 1].map((k) => d.createBindGroup({ layout: pipeline2.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: bufs[k] } }, { binding: 1, resource: { buffer: bufs[1 - k] } }] }));
const pipes = [pipeline, pipeline2], groupsOf = [groups[0], groups2[1]];
const callUs: Record<string, number> = {};
const perCall: [string, (p: GPUComputePassEncoder, i: number) => void][] = [
  ['setPipeline', (p, i) => p.setPipeline(pipes[i & 1])],
  ['setBindGroup', (p, i) => p.setBindGroup(0, groupsOf[i & 1])],
  ['dispatchWorkgroups', (p) => p.dispatchWorkgroups(1)],
  ['all three', (p, i) => { p.setPipeline(pipes[i & 1]); p.setBindGroup(0, groupsOf[i & 1]); p.dispatchWorkgroups(1); }],
];
for (const [name, f] of perCall) {
  const t: number[] = [];
  for (let r = 0; r < 5; r++) {
    const pass = d.createCommandEncoder().beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, groups[0]);
    const t0 = performance.now();
    for (let i = 0; i < callCount; i++) f(pass, i);
    t.push((performance.now() - t0) * 1000 / callCount);
    pass.end();
  }
  callUs[name] = median(t);
}

rows.push(...await section('chain', [
  ...chains.map((k) => partsVariant(`${k} dispatches, one pass`, chainOf(k), [k], 'idle')),
  ...[chains[Math.min(2, chains.length - 1)]].map((k) => partsVariant(`${k} dispatches, one pass`, chainOf(k), [k], 'spin')),
]));

/** Ways to cut `n` dispatches into submits: all in one, parts of 12 (each its own submit, and all in one call), and
 *  a small first part then the rest. */
function splits(n: number): [string, number[], boolean][] {
  const even = (size: number) => Array.from({ length: Math.ceil(n / size) }, (_, i) => Math.min(size, n - i * size));
  return [
    [`${n} in one submit`, [n], false],
    [`parts of 12 (${even(12).join('+')}), a submit each`, even(12), false],
    [`parts of 12 in one submit call`, even(12), true],
    ...[8, 6, 3, 1].filter((f) => f < n).map((f): [string, number[], boolean] => [`${f}+${n - f}, a submit each`, [f, n - f], false]),
  ];
}

rows.push(...await section('split', splits(splitChain).map(([name, parts, one]) => partsVariant(name, chainOf(splitChain), parts, 'idle', one))));

if (modelName) {
  let path = modelName;
  if (!modelName.endsWith('.onnx')) {
    const make = zooModels[modelName] ?? fixtureModels[modelName];
    if (!make) throw new Error(`--model ${modelName}: not an .onnx file, a zoo model (${Object.keys(zooModels).join(', ')}) nor a fixture model`);
    path = join(tmpdir(), `roundtrip-${modelName}-b1.onnx`);
    writeFileSync(path, exportOnnx(make(1)));
  }
  const g = await loadModel(path, { batch: 1 });
  const label = basename(modelName, '.onnx');
  const hw = loadHw(hwName);
  const plan = planFusion(toDag(g), hw, { mode: 'optimal', model: label, dtypeBytes: 4, batch: batchOf(g) });
  const session = await createSession(path, { hw, batch: 1, plan });
  const inputs = benchInputs(g);
  const x = g.inputs[0], y = g.outputs[0];
  const bytes = (t: string) => 4 * g.tensors.get(t)!.shape.reduce((a, c) => a * c, 1);
  const gin = d.createBuffer({ size: bytes(x), usage: G.STORAGE | G.COPY_SRC | G.COPY_DST, label: 'roundtrip model input' });
  d.queue.writeBuffer(gin, 0, inputs[x]);
  const gout = d.createBuffer({ size: bytes(y), usage: G.STORAGE | G.COPY_SRC | G.COPY_DST, label: 'roundtrip model output' });
  const call = (f: () => Promise<unknown>) => () => () => ({ done: f(), submitMs: 0 });
  const variants: Variant[] = [];
  for (const wait of ['idle', 'spin'] as const) {
    variants.push(
      { name: `${label}: host in/out`, wait, prepare: call(() => session.run(inputs)) },
      { name: `${label}: GPU-resident`, wait, prepare: call(async () => { await session.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await d.queue.onSubmittedWorkDone(); }) },
    );
  }
  // section() starts the spin once the call has returned its promise, so it covers whatever in run() waits for a turn
  // of the event loop: the GPU's finishing, the error scopes' pops.
  rows.push(...await section('model', variants));
  // Where one run() spends the host's time: from the call to the first queue.submit (the GPU cannot start before it),
  // that submit's own time, the last submit's return, and the call's promise settling (us, medians; idle waits).
  const stamps: number[] = [];
  const queueSubmit = d.queue.submit.bind(d.queue);
  d.queue.submit = (b: Iterable<GPUCommandBuffer>) => { stamps.push(performance.now()); queueSubmit(b); stamps.push(performance.now()); };
  const calls: [string, () => Promise<unknown>][] = [
    ['host in/out', () => session.run(inputs)],
    ['GPU-resident', async () => { await session.run({ [x]: gin }, { outputLocation: 'gpu', outputBuffers: { [y]: gout } }); await d.queue.onSubmittedWorkDone(); }],
  ];
  const marks = calls.map(() => [] as number[][]);
  try {
    for (let r = 0; r < warmup + reps; r++) {
      for (let i = 0; i < calls.length; i++) {
        stamps.length = 0;
        const t0 = performance.now();
        await calls[i][1]();
        const t1 = performance.now();
        if (r >= warmup && stamps.length) marks[i].push([stamps[0] - t0, stamps[1] - stamps[0], stamps[stamps.length - 1] - t0, t1 - t0, stamps.length / 2].map((v, k) => (k < 4 ? 1000 * v : v)));
      }
    }
  } finally {
    d.queue.submit = queueSubmit;
  }
  for (let i = 0; i < calls.length; i++) {
    const m = (k: number) => median(marks[i].map((v) => v[k]));
    timeline.push({ variant: `${label}: ${calls[i][0]}`, firstSubmitAtUs: m(0), firstSubmitUs: m(1), lastSubmitDoneAtUs: m(2), settledAtUs: m(3), submits: m(4) });
  }
  // The session's own dispatches (its inputs as the last run left them), cut as the split section cuts the chain.
  const list = executorOf(session).dispatches;
  rows.push(...await section('model-split', splits(list.length).map(([name, parts, one]) => partsVariant(`${label}: ${name}`, list, parts, 'idle', one))));
  session.dispose();
  gin.destroy();
  gout.destroy();
}

const f = (v: number | undefined) => (v === undefined ? '-' : v.toFixed(1)).padStart(8);
console.log(`\n${'section'.padEnd(11)} ${'variant'.padEnd(52)} ${'wait'.padEnd(5)} ${'submit'.padStart(8)} ${'wait'.padStart(8)} ${'p90'.padStart(8)} ${'gpu'.padStart(8)} ${'around'.padStart(8)} ${'turns'.padStart(6)} ${'turn'.padStart(8)}  (us)`);
for (const r of rows) {
  console.log(`${r.section.padEnd(11)} ${r.variant.padEnd(52)} ${r.wait.padEnd(5)} ${f(r.submitUs)} ${f(r.waitUs)} ${f(r.waitP90Us)} ${f(r.gpuUs)} ${f(r.aroundUs)} ${(r.turns === undefined ? '-' : String(r.turns)).padStart(6)} ${f(r.turnUs)}`);
}
for (const t of timeline) {
  console.log(`run() timeline, ${t.variant}: first queue.submit at ${t.firstSubmitAtUs.toFixed(1)} us (taking ${t.firstSubmitUs.toFixed(1)}), last submit done at ${t.lastSubmitDoneAtUs.toFixed(1)}, settled at ${t.settledAtUs.toFixed(1)} (${t.submits} submits)`);
}
console.log(`encode (JS -> Dawn, one pass, not timed above): ${[...encodeUs].map(([k, u]) => `${k} dispatches ${u.toFixed(1)} us`).join(', ')}`);
console.log(`host per call in a pass (us): ${Object.entries(callUs).map(([k, u]) => `${k} ${u.toFixed(2)}`).join(', ')}`);

if (out) {
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'roundtrip.json'), JSON.stringify({ device: ctx.adapterInfo, features: describeDevice(ctx), reps, warmup, work, elements, encodeUs: Object.fromEntries(encodeUs), callUs, rows, timeline }, null, 1));
}
for (const b of bufs) b.destroy();
readTs.destroy();
ts?.resolve.destroy();
ts?.set.destroy();
await releaseGpu();
