import { loadModel } from './src/graph/load.ts';
import { exportOptimized } from './src/export/optimized.ts';
import { applyPlan } from './src/rewrite/apply-plan.ts';
import { readOptimized } from './src/export/read-optimized.ts';
import { writeFileSync } from 'node:fs';
const g = await loadModel('/tmp/hx/int8.tflite');
const plan = { model: 'x', hw: 'h100', mode: 'optimal', modules: [] } as any;
try { const b = exportOptimized(applyPlan(g, plan), plan); writeFileSync('/tmp/hx/int8-unfused.onnx', b); console.log('exported', b.length);
  const r = await readOptimized('/tmp/hx/int8-unfused.onnx'); console.log('read back', r.graph.nodes.map(n => n.op).join(','), [...r.graph.tensors.values()].filter(t => t.quant).length, 'quant tensors');
} catch (e) { console.log('ERR', (e as Error).message); }
const ort = await import('onnxruntime-node');
try { await ort.InferenceSession.create('/tmp/hx/int8-unfused.onnx'); console.log('ort ok'); } catch (e) { console.log('ORT ERR', (e as Error).message.slice(0, 300)); }
