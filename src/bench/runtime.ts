// What the bench and the tuner time: fcm-opt sessions (src/pipeline/session.ts createSession) or stand-ins that
// tests give, through the few calls they use: run(inputs) (host arrays in, outputs read back), profile() (per-node
// times) and, where the session can, timeNodes (src/runtime/profile.ts, bound by src/bench/profile.ts
// timedSession). Profile entries are read leniently (normalizeProfile) so that stand-ins can report in ms, us or ns.

import type { HwConfig } from '../planner/hw-config.js';
import type { Plan } from '../planner/plan.js';

export interface FcmSessionLike {
  /** Which kernels run the model ('int8': the integer executor; src/runtime/executor.ts Session.path). */
  path?: string;
  run(inputs: Record<string, Float32Array>): Promise<unknown>;
  /** Profiles one run of `feeds` (src/runtime: { method: 'timestamp' | 'wall', nodes: [{ node, op, ms }] }). */
  profile(feeds?: Record<string, Float32Array>, opts?: { heatRuns?: number }): unknown;
  /** Per-group GPU times in one pass (src/runtime/profile.ts timeNodes); absent or refusing: profiles are used. */
  timeNodes?(groups: readonly (readonly string[])[], opts?: { iters?: number; heatMs?: number }): Promise<number[]>;
  /** Host time of its runs so far, summed (src/runtime/transfer.ts HostTimes); absent: the bench shows no split. */
  hostTimes?(): HostTimesLike;
  /** fp16: the tensors kept f32 (f32 islands, src/runtime/f16-islands.ts). */
  f32Tensors?: string[];
  /** Inferences each run is split into (SessionOptions.subBatches; src/runtime/sub-batch.ts). */
  subBatches?: number;
  dispose(): unknown;
}

/** Summed host time of a session's runs (ms), by part. */
export interface HostTimesLike { runs: number; uploadMs: number; encodeMs: number; submitMs: number; waitMs: number; readMs: number }

export interface CreateSessionOptions {
  hw: HwConfig;
  plan: Plan | 'unfused';
  batch?: number;
  /** Float models: 'fp16' runs the float kernels with f16 tensors (default fp32). */
  precision?: 'fp32' | 'fp16';
  /** Runs that may wait for their outputs at once (throughput mode). */
  maxInFlight?: number;
  /** Static shapes for inputs with symbolic dims (--input-shape). */
  inputShapes?: Record<string, number[]>;
  /** The command's memory budget (--max-memory), charged by the session before its GPU buffers are made. */
  maxMemory?: number;
  /** SessionOptions.subBatches (--sub-batches): k, 'auto' or 1. */
  subBatches?: number | 'auto';
}

export type CreateSession = (model: string | Uint8Array, opts: CreateSessionOptions) => Promise<FcmSessionLike>;

export const firstLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/** GPU time of one node in one profiled run. */
export interface ProfileEntry {
  node: string;
  op?: string;
  gpuMs: number;
}

const msFields = ['gpuMs', 'ms', 'timeMs', 'durationMs'];
const usFields = ['gpuUs', 'us', 'timeUs', 'durationUs'];
const nsFields = ['gpuNs', 'ns', 'timeNs', 'durationNs'];

function timeOf(o: Record<string, unknown>): number | undefined {
  for (const [fields, scale] of [[msFields, 1], [usFields, 1e-3], [nsFields, 1e-6]] as const) {
    for (const f of fields) {
      const v = o[f];
      if (typeof v === 'number' && Number.isFinite(v)) return v * scale;
      if (typeof v === 'bigint') return Number(v) * scale;
    }
  }
  return undefined;
}

/**
 * Per-node GPU times from what session.profile() returns: an array (or { nodes | entries | layers: array })
 * of records naming the node (`node`, `name` or `nodeName`) with a time in ms (gpuMs, ms, timeMs,
 * durationMs), us (gpuUs, us, timeUs, durationUs) or ns (gpuNs, ns, timeNs, durationNs). Entries of the same
 * node (several dispatches) are summed. Throws when no entry has a GPU time.
 */
/** How the times were taken, when the profile says ('timestamp' queries, or 'wall' time per node). */
export function profileMethod(raw: unknown): string | undefined {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const m = (raw as Record<string, unknown>).method;
  return typeof m === 'string' ? m : undefined;
}

export function normalizeProfile(raw: unknown): ProfileEntry[] {
  let list: unknown = raw;
  if (list && typeof list === 'object' && !Array.isArray(list)) {
    const o = list as Record<string, unknown>;
    list = o.nodes ?? o.entries ?? o.layers;
  }
  if (!Array.isArray(list)) throw new Error('session.profile() returned no list of node times');
  const byNode = new Map<string, ProfileEntry>();
  for (const item of list) {
    if (!item || typeof item !== 'object') continue;
    const o = item as Record<string, unknown>;
    const node = [o.node, o.name, o.nodeName].find((v): v is string => typeof v === 'string');
    const t = timeOf(o);
    if (node === undefined || t === undefined) continue;
    const prev = byNode.get(node);
    if (prev) prev.gpuMs += t;
    else byNode.set(node, { node, op: typeof o.op === 'string' ? o.op : undefined, gpuMs: t });
  }
  if (byNode.size === 0) throw new Error('session.profile() gave no GPU times (no timestamp queries on this adapter?)');
  return [...byNode.values()];
}
