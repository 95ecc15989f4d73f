// fcm-opt in the browser: the same API as in Node over the page's navigator.gpu (or a GPUDevice the caller
// gives with useDevice), for ONNX, TFLite and fcm-opt's optimized ONNX files given as bytes (or fetched from a
// URL with loadBytes). Built by scripts/build-browser.mjs into dist/browser/fcm-opt.mjs; file access, the
// onnxruntime reference and Dawn's package are replaced there by the modules of this folder.
export * from '../errors.js';
export type { Graph, Node, Tensor, DType } from '../graph/ir.js';
export { loadModel } from '../graph/load.js';
export { planFusion, type PlanFusionOptions, type PlanMode } from '../planner/index.js';
export { parseHwCfg, parseHwJson, hwFromAdapter } from '../planner/hw.js';
export { formatPlan, planToJson } from '../planner/format.js';
export type { HwConfig } from '../planner/hw-config.js';
export type { Plan, PlanModule, Tiles, ModuleKind } from '../planner/plan.js';
export { toDag } from '../planner/to-dag.js';
export { readOptimized, type OptimizedModel } from '../export/read-optimized.js';
export { exportOptimized } from '../export/optimized.js';
export { applyPlan } from '../rewrite/apply-plan.js';
export { createSession, createInt8Session, type SessionOptions, type Int8SessionOptions } from '../pipeline/session.js';
export { planningInput, planFor, type ModelInput } from '../pipeline/pipeline.js';
export { resolveHw } from '../pipeline/hw.js';
export type { Session, SessionStats, Profile } from '../runtime/executor.js';
export type { RunResult, RunOutput } from '../runtime/precision.js';
export { acquireGpu, releaseGpu, useDevice } from '../runtime/device.js';
export { compareOutputs, seededInput, type Comparison } from '../runtime/compare.js';

/** The bytes at `url` (a model file), for createSession and loadModel, which take bytes in the browser. */
export async function loadBytes(url: string | URL): Promise<Uint8Array> {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${String(url)}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}
