// Moving a run's feeds to the GPU and its outputs back: the upload paths the executor can take, and read-back
// buffers reused across runs. Every path writes the same bytes; they differ in who copies them and how often
// memory is allocated:
//
// - 'write-buffer': queue.writeBuffer per feed. Dawn copies the data into its own staging memory, then copies
//   that to the buffer on the GPU: two copies, and Dawn for Node moved about 0.9 GB/s this way on an H100 machine.
// - 'staging-ring': a ring of MAP_WRITE buffers made once. A run takes the next one (mapped ahead of need: it was
//   re-mapped with mapAsync(WRITE) right after its last use was submitted), writes the feeds into its mapped range in
//   place, unmaps it and encodes copyBufferToBuffer into the run's first command buffer.
// - 'mapped-at-creation': a staging buffer created mapped for each run, written, unmapped, copied and destroyed.
//
// The ring's memory can also be lent to the caller (Uploader.lend, Session.stagingInputs): the feeds are then written
// where the copy to the GPU starts (a decoder's output, a producer's), and the run that takes them copies nothing on
// the host: what bounds the upload is then the GPU's copy, not the host's memcpy. From the caller's own arrays, a
// session split into sub-batches (sub-batch.ts) hides most of that memcpy instead: it runs while the GPU works on the
// sub-batch before.
//
// Read-back: one MAP_READ buffer per set holds every GPU output at its own offset, so a run maps once; the sets are
// made once and reused (a set per run in flight), and a run copies only the outputs asked for.

import { gpuFailure } from '../errors.js';
import type { GpuObjects } from './gpu.js';

export type UploadPath = 'write-buffer' | 'staging-ring' | 'mapped-at-creation';
export const uploadPaths: readonly UploadPath[] = ['write-buffer', 'staging-ring', 'mapped-at-creation'];

/**
 * The executor's upload path unless told otherwise. On lavapipe a run's upload + submit host time was 0.4-0.6 ms with the
 * ring against 7-24 ms with writeBuffer (whose copy Dawn does at the next submit); the GPU machine's figures
 * (bench/transfer.ts, bench/host-path.ts; BENCHMARKS.md) decide it there.
 */
export const defaultUploadPath: UploadPath = 'staging-ring';

/** Staging buffers in the ring: one per run in flight, and one more being written while those run. */
export const defaultRingSize = 3;

/** A buffer that feeds are written to, under a key (a tensor, or an image's bytes). */
export interface UploadTarget { key: string; dst: GPUBuffer; bytes: number }

/** The writes of one run. */
export interface UploadBatch {
  /** Writes `data` to the target `key` (at most its bytes). */
  write(key: string, data: ArrayBufferView): void;
  /** Encodes the copies of what was written (staging paths; nothing for 'write-buffer'); call once, before submit. */
  encode(enc: GPUCommandEncoder): void;
  /** After the submit that holds encode()'s copies, or when the run was abandoned: staging memory goes back. */
  done(): void;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

function bytesOf(data: ArrayBufferView): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** queue.writeBuffer of `data` to `dst`: WebGPU wants a multiple of 4 bytes, so a ragged tail goes in a padded word. */
export function writeBufferPadded(queue: GPUQueue, dst: GPUBuffer, data: ArrayBufferView): void {
  const n = data.byteLength, head = n & ~3;
  if (head) queue.writeBuffer(dst, 0, data.buffer, data.byteOffset, head);
  if (head < n) {
    const tail = new Uint8Array(4);
    tail.set(bytesOf(data).subarray(head));
    queue.writeBuffer(dst, head, tail);
  }
}

/** `busy`: taken by a run being written, or lent (`lent` its mapped range), from the choice until its copy is encoded. */
interface RingSlot { buffer: GPUBuffer; ready: Promise<void>; failed?: unknown; mapped: boolean; busy: boolean; lent?: ArrayBuffer }

/** Staging memory lent to the caller: a view per target (by key) into one mapped ring buffer. */
export interface LentStaging { range: ArrayBuffer; views: Map<string, Uint8Array> }

export class Uploader {
  private readonly offsets = new Map<string, UploadTarget & { offset: number }>();
  private readonly total: number;
  private readonly ring: RingSlot[] = [];
  private next = 0;

  constructor(private readonly gpu: GpuObjects, readonly path: UploadPath, targets: readonly UploadTarget[], ringSize = defaultRingSize) {
    let off = 0;
    for (const t of targets) {
      this.offsets.set(t.key, { ...t, offset: off });
      off += align(t.bytes, 16);
    }
    this.total = Math.max(16, off);
    if (path === 'staging-ring' && targets.length) {
      const W = GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC;
      for (let i = 0; i < Math.max(1, ringSize); i++) {
        // Created mapped: the first runs need no mapAsync.
        const buffer = this.gpu.ctx.device.createBuffer({ size: this.total, usage: W, mappedAtCreation: true, label: `upload ring ${i}` });
        this.gpu.adopt(buffer);
        this.ring.push({ buffer, ready: Promise.resolve(), mapped: true, busy: false });
      }
    }
  }

  /** Bytes of one run's staging memory (every target). */
  get stagingBytes(): number { return this.total; }

  /**
   * The batch for the next run; the ring path waits until its next staging buffer is mapped again. `feeds`: the run's
   * host data; one that lies in lent staging memory (lend()) makes the run take that buffer, and its writes copy
   * nothing. `writes` false: the run writes nothing (its feeds are GPU buffers), so it takes no staging memory: no ring
   * buffer is unmapped, re-mapped or copied from (each a call into Dawn and a promise).
   */
  async begin(feeds: readonly ArrayBufferView[] = [], writes = true): Promise<UploadBatch> {
    if (this.path === 'write-buffer' || !this.offsets.size || !writes) return this.writeBufferBatch();
    if (this.path === 'mapped-at-creation') {
      const buffer = this.gpu.ctx.device.createBuffer({ size: this.total, usage: GPUBufferUsage.COPY_SRC, mappedAtCreation: true, label: 'upload' });
      return this.staged(buffer, buffer.getMappedRange(), () => buffer.destroy());
    }
    const lent = this.ring.find((s) => s.lent !== undefined && feeds.some((f) => f.buffer === s.lent));
    const slot = lent ?? (await this.nextFree());
    const range = slot.lent ?? slot.buffer.getMappedRange();
    slot.lent = undefined;
    slot.mapped = false;
    return this.staged(slot.buffer, range, () => {
      slot.ready = slot.buffer.mapAsync(GPUMapMode.WRITE).then(() => { slot.mapped = true; }, (e) => { slot.failed = e; });
      slot.busy = false;
    });
  }

  /**
   * Lends the next staging buffer's memory: a view per target, to be filled by the caller and passed to the run that
   * takes them (begin), which then copies nothing on the host. The ring grows by a buffer where every other one is
   * lent. Only the staging-ring path lends (undefined otherwise).
   */
  async lend(): Promise<LentStaging | undefined> {
    if (this.path !== 'staging-ring' || !this.offsets.size) return undefined;
    const slot = await this.nextFree();
    slot.lent = slot.buffer.getMappedRange();
    const views = new Map<string, Uint8Array>();
    for (const [k, t] of this.offsets) views.set(k, new Uint8Array(slot.lent, t.offset, t.bytes));
    return { range: slot.lent, views };
  }

  /** The next ring buffer not lent, mapped (a new one where all are lent). */
  private async nextFree(): Promise<RingSlot> {
    let slot: RingSlot | undefined;
    for (let i = 0; i < this.ring.length && !slot; i++) {
      const s = this.ring[this.next];
      this.next = (this.next + 1) % this.ring.length;
      if (!s.busy) slot = s;
    }
    if (!slot) {
      const buffer = this.gpu.ctx.device.createBuffer({ size: this.total, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true, label: `upload ring ${this.ring.length}` });
      this.gpu.adopt(buffer);
      slot = { buffer, ready: Promise.resolve(), mapped: true, busy: false };
      this.ring.push(slot);
    }
    slot.busy = true;
    await slot.ready;
    if (slot.failed !== undefined) throw gpuFailure('WebGPU', `mapping an upload buffer failed: ${(slot.failed as Error).message ?? String(slot.failed)}`);
    if (!slot.mapped) throw new Error('internal: upload ring buffer taken twice');
    return slot;
  }

  private target(key: string): UploadTarget & { offset: number } {
    const t = this.offsets.get(key);
    if (!t) throw new Error(`internal: no upload target '${key}'`);
    return t;
  }

  /** A batch that writes with queue.writeBuffer now, whatever the path (profiling and timing write this way). */
  writeBufferBatch(): UploadBatch {
    const queue = this.gpu.ctx.device.queue;
    return {
      write: (key, data) => writeBufferPadded(queue, this.target(key).dst, data),
      encode: () => undefined,
      done: () => undefined,
    };
  }

  /** A batch written into `range` (the mapped staging buffer), copied to the targets by encode(). */
  private staged(buffer: GPUBuffer, range: ArrayBuffer, recycle: () => void): UploadBatch {
    const copies: { offset: number; dst: GPUBuffer; size: number }[] = [];
    let unmapped = false;
    const unmap = () => { if (!unmapped) { unmapped = true; buffer.unmap(); } };
    return {
      write: (key, data) => {
        const t = this.target(key);
        if (data.byteLength > t.bytes) throw new Error(`internal: ${data.byteLength} bytes for upload target '${key}' of ${t.bytes}`);
        // Data already in place (lent staging memory) needs no copy.
        if (data.buffer !== range || data.byteOffset !== t.offset) new Uint8Array(range, t.offset, data.byteLength).set(bytesOf(data));
        copies.push({ offset: t.offset, dst: t.dst, size: align(data.byteLength, 4) });
      },
      encode: (enc) => {
        unmap();
        for (const c of copies) enc.copyBufferToBuffer(buffer, c.offset, c.dst, 0, c.size);
      },
      done: () => {
        unmap();
        recycle();
      },
    };
  }
}

/** A buffer read back under a key (a tensor). */
export interface ReadTarget { key: string; src: GPUBuffer; bytes: number }

/** One set of read-back memory: a MAP_READ buffer with every target at its own offset. */
export class ReadSet {
  private readonly copied: string[] = [];

  constructor(readonly buffer: GPUBuffer, private readonly layout: ReadonlyMap<string, ReadTarget & { offset: number }>) {}

  /** Encodes the copies of `keys` from their buffers into this set. */
  encode(enc: GPUCommandEncoder, keys: readonly string[]): void {
    this.copied.length = 0;
    for (const k of keys) {
      const t = this.layout.get(k);
      if (!t) throw new Error(`internal: no read-back target '${k}'`);
      enc.copyBufferToBuffer(t.src, 0, this.buffer, t.offset, t.bytes);
      this.copied.push(k);
    }
  }

  /**
   * Maps the set (after the submit holding encode()'s copies) and hands each copied target's bytes to `take`; the
   * bytes are only valid inside `take` (unmap detaches them), so `take` must copy what it keeps.
   */
  async read(take: (key: string, bytes: ArrayBuffer) => void): Promise<void> {
    if (!this.copied.length) return;
    await this.buffer.mapAsync(GPUMapMode.READ);
    try {
      for (const k of this.copied) {
        const t = this.layout.get(k)!;
        take(k, this.buffer.getMappedRange(t.offset, t.bytes));
      }
    } finally {
      this.buffer.unmap();
    }
  }
}

/**
 * `sets` read-back sets made once; acquire() waits while every set belongs to a run in flight. A set is taken for a
 * whole run, from before its submit to after its outputs were read.
 */
export class ReadbackPool {
  private readonly free: ReadSet[] = [];
  private readonly waiting: ((s: ReadSet) => void)[] = [];

  constructor(gpu: GpuObjects, targets: readonly ReadTarget[], sets: number) {
    const layout = new Map<string, ReadTarget & { offset: number }>();
    let off = 0;
    for (const t of targets) {
      layout.set(t.key, { ...t, offset: off });
      // getMappedRange offsets are multiples of 8.
      off += align(t.bytes, 8);
    }
    for (let i = 0; i < Math.max(1, sets); i++) {
      const b = gpu.buffer(Math.max(8, off), GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST, `read-back ${i}`);
      this.free.push(new ReadSet(b, layout));
    }
  }

  acquire(): Promise<ReadSet> {
    const s = this.free.pop();
    if (s) return Promise.resolve(s);
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  release(s: ReadSet): void {
    const w = this.waiting.shift();
    if (w) w(s);
    else this.free.push(s);
  }
}

/**
 * Host time of runs (ms, summed): writing feeds, encoding dispatches, queue.submit, waiting for outputs, copying them.
 * Where dispatches are encoded ahead (executor.ts encodeAhead), a run's encodeMs is the next run's encoding, done
 * after its own submit while the GPU works.
 */
export interface HostTimes { runs: number; uploadMs: number; encodeMs: number; submitMs: number; waitMs: number; readMs: number }

export const noHostTimes = (): HostTimes => ({ runs: 0, uploadMs: 0, encodeMs: 0, submitMs: 0, waitMs: 0, readMs: 0 });
