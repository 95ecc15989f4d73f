// Host <-> GPU transfer paths through Dawn for Node, each timed alone on buffers of 1, 5, 19 and 77 MB (a batch-1
// 224x224 fp32 image is 0.6 MB; batch 32 is 19.3 MB; 77 MB is batch 128):
//
//   upload    write-buffer        queue.writeBuffer (Dawn copies into its staging memory, then to the buffer)
//             staging-ring        MAP_WRITE buffers made once, 3 in a ring: await the next one's mapAsync(WRITE),
//                                 write through getMappedRange, unmap, copyBufferToBuffer, submit, mapAsync again
//             staging-lent        the ring with the bytes already in its mapped memory (written there by their
//                                 producer: Session.stagingInputs): unmap, copyBufferToBuffer, submit, map again
//             mapped-at-creation  a COPY_SRC buffer created mapped each time, written, unmapped, copied, destroyed
//   read-back new-buffer-slice    a MAP_READ buffer created each time, copy, mapAsync, getMappedRange().slice()
//             reuse-slice         one MAP_READ buffer reused: copy, mapAsync, getMappedRange().slice()
//             reuse-new-set       the same, copied into a new Float32Array each time (allocation, no slice)
//             reuse-set           the same, copied into a Float32Array made once (no allocation per read)
//             reuse-map-only      copy and mapAsync, no host copy: what the bytes cost to reach mapped memory
//   host      memcpy              Uint8Array.set of the same bytes between two host arrays (the host's own bound)
//
// Each figure is bytes / median time of `--reps` repetitions after 2 untimed ones, from the call to the GPU having
// finished (onSubmittedWorkDone for uploads; mapAsync resolving for read-backs), so paths that return early pay
// for it. Uploads also show their host-only time (until submit returns) next to it.
//
// Run (GPU machine, see BENCHMARKS.md): npm run build; then on the device
//   source .gpu/enter.sh && node dist/bench/transfer.js [--sizes 1,5,19,77] [--reps 15] [--json]
// Here on lavapipe: XDG_RUNTIME_DIR=/tmp node dist/bench/transfer.js --reps 5 (a sanity figure only).

import { acquireGpu, releaseGpu } from '../src/runtime/device.js';
import { median } from '../src/bench/stats.js';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}

const sizesMb = arg('sizes', '1,5,19,77').split(',').map(Number);
const reps = Number(arg('reps', '15'));
const asJson = process.argv.includes('--json');
const MB = 1e6;

interface Row { path: string; direction: 'upload' | 'read-back' | 'host'; mb: number; ms: number; gbps: number; hostMs?: number }

const ctx = await acquireGpu();
const d = ctx.device;
const G = GPUBufferUsage;
const rows: Row[] = [];

async function timed(f: () => Promise<number | void>): Promise<{ ms: number; hostMs?: number }> {
  const t: number[] = [], h: number[] = [];
  for (let i = 0; i < reps + 2; i++) {
    const t0 = performance.now();
    const host = await f();
    const dt = performance.now() - t0;
    if (i >= 2) { t.push(dt); if (typeof host === 'number') h.push(host); }
  }
  return { ms: median(t), ...(h.length ? { hostMs: median(h) } : {}) };
}

function add(path: string, direction: Row['direction'], bytes: number, r: { ms: number; hostMs?: number }): void {
  rows.push({ path, direction, mb: bytes / MB, ms: r.ms, gbps: bytes / (r.ms / 1000) / 1e9, ...(r.hostMs !== undefined ? { hostMs: r.hostMs } : {}) });
}

for (const mb of sizesMb) {
  const bytes = Math.ceil((mb * MB) / 4) * 4;
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i += 4096) data[i] = i & 255;
  const dst = d.createBuffer({ size: bytes, usage: G.STORAGE | G.COPY_DST | G.COPY_SRC });

  // Upload: writeBuffer.
  add('write-buffer', 'upload', bytes, await timed(async () => {
    const t0 = performance.now();
    d.queue.writeBuffer(dst, 0, data);
    const host = performance.now() - t0;
    await d.queue.onSubmittedWorkDone();
    return host;
  }));

  // Upload: a ring of mapped staging buffers.
  const ring = Array.from({ length: 3 }, () => ({ b: d.createBuffer({ size: bytes, usage: G.MAP_WRITE | G.COPY_SRC, mappedAtCreation: true }), ready: Promise.resolve() }));
  let next = 0;
  add('staging-ring', 'upload', bytes, await timed(async () => {
    const slot = ring[next];
    next = (next + 1) % ring.length;
    const t0 = performance.now();
    await slot.ready;
    new Uint8Array(slot.b.getMappedRange()).set(data);
    slot.b.unmap();
    const enc = d.createCommandEncoder();
    enc.copyBufferToBuffer(slot.b, 0, dst, 0, bytes);
    d.queue.submit([enc.finish()]);
    slot.ready = slot.b.mapAsync(GPUMapMode.WRITE);
    const host = performance.now() - t0;
    await d.queue.onSubmittedWorkDone();
    return host;
  }));
  // Upload: the same ring with the data already in the mapped memory (Session.stagingInputs: the producer wrote it
  // there): unmap, copy on the GPU, map again. What bounds an upload once the host copy is gone.
  add('staging-lent', 'upload', bytes, await timed(async () => {
    const slot = ring[next];
    next = (next + 1) % ring.length;
    const t0 = performance.now();
    await slot.ready;
    slot.b.unmap();
    const enc = d.createCommandEncoder();
    enc.copyBufferToBuffer(slot.b, 0, dst, 0, bytes);
    d.queue.submit([enc.finish()]);
    slot.ready = slot.b.mapAsync(GPUMapMode.WRITE);
    const host = performance.now() - t0;
    await d.queue.onSubmittedWorkDone();
    return host;
  }));
  await Promise.all(ring.map((s) => s.ready));
  for (const s of ring) s.b.destroy();

  // Upload: a staging buffer created mapped each time.
  add('mapped-at-creation', 'upload', bytes, await timed(async () => {
    const t0 = performance.now();
    const b = d.createBuffer({ size: bytes, usage: G.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(b.getMappedRange()).set(data);
    b.unmap();
    const enc = d.createCommandEncoder();
    enc.copyBufferToBuffer(b, 0, dst, 0, bytes);
    d.queue.submit([enc.finish()]);
    b.destroy();
    const host = performance.now() - t0;
    await d.queue.onSubmittedWorkDone();
    return host;
  }));

  // Read-back: a new MAP_READ buffer each time.
  const copyTo = (rb: GPUBuffer) => {
    const enc = d.createCommandEncoder();
    enc.copyBufferToBuffer(dst, 0, rb, 0, bytes);
    d.queue.submit([enc.finish()]);
  };
  add('new-buffer-slice', 'read-back', bytes, await timed(async () => {
    const rb = d.createBuffer({ size: bytes, usage: G.MAP_READ | G.COPY_DST });
    copyTo(rb);
    await rb.mapAsync(GPUMapMode.READ);
    const out = rb.getMappedRange().slice(0);
    rb.unmap();
    rb.destroy();
    if (out.byteLength !== bytes) throw new Error('short read');
  }));
  const rb = d.createBuffer({ size: bytes, usage: G.MAP_READ | G.COPY_DST });
  add('reuse-slice', 'read-back', bytes, await timed(async () => {
    copyTo(rb);
    await rb.mapAsync(GPUMapMode.READ);
    const out = rb.getMappedRange().slice(0);
    rb.unmap();
    if (out.byteLength !== bytes) throw new Error('short read');
  }));
  add('reuse-new-set', 'read-back', bytes, await timed(async () => {
    copyTo(rb);
    await rb.mapAsync(GPUMapMode.READ);
    const a = new Float32Array(bytes / 4);
    a.set(new Float32Array(rb.getMappedRange()));
    rb.unmap();
  }));
  const into = new Float32Array(bytes / 4);
  add('reuse-set', 'read-back', bytes, await timed(async () => {
    copyTo(rb);
    await rb.mapAsync(GPUMapMode.READ);
    into.set(new Float32Array(rb.getMappedRange()));
    rb.unmap();
  }));
  add('reuse-map-only', 'read-back', bytes, await timed(async () => {
    copyTo(rb);
    await rb.mapAsync(GPUMapMode.READ);
    rb.getMappedRange();
    rb.unmap();
  }));
  rb.destroy();

  // The host's own copy bandwidth for the same bytes.
  const host = new Uint8Array(bytes);
  add('memcpy', 'host', bytes, await timed(async () => { host.set(data); }));
  dst.destroy();
}

if (asJson) {
  process.stdout.write(`${JSON.stringify({ device: ctx.adapterInfo, reps, rows }, null, 1)}\n`);
} else {
  process.stdout.write(`device: ${ctx.adapterInfo.description || ctx.adapterInfo.device} (${ctx.adapterInfo.vendor}); median of ${reps}\n`);
  process.stdout.write(`${'direction'.padEnd(10)} ${'path'.padEnd(19)} ${'MB'.padStart(6)} ${'ms'.padStart(9)} ${'GB/s'.padStart(7)} ${'host ms'.padStart(8)}\n`);
  for (const r of rows) {
    process.stdout.write(`${r.direction.padEnd(10)} ${r.path.padEnd(19)} ${r.mb.toFixed(1).padStart(6)} ${r.ms.toFixed(3).padStart(9)} ${r.gbps.toFixed(2).padStart(7)} ${(r.hostMs === undefined ? '' : r.hostMs.toFixed(3)).padStart(8)}\n`);
  }
}
await releaseGpu();
