// Import speed: builds a ~100 MB ONNX model (a MobileNet-style stack with big initializers) in the temp
// folder and times importOnnx on it, file read included. Goal: under 1 s.
//   npm run build && node dist/bench/import-onnx.js
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportOnnx } from '../converters/onnx/export.js';
import { importOnnx } from '../converters/onnx/import.js';
import { GraphBuilder } from '../fixtures/ir-builder.js';

export function bigModel(targetBytes = 100 * 1024 * 1024) {
  const b = new GraphBuilder('big', 100);
  let y = b.input('input', [1, 256, 14, 14]);
  let bytes = 0;
  // Alternating DW 3x3 and PW 1x1 (256 -> 512 -> 256 ...): PW weights carry the bulk; 512 layers of
  // many small tensors would test per-tensor overhead, these big ones test bytes.
  for (let i = 0; bytes < targetBytes; i++) {
    const c = b.shape(y)[1];
    y = b.relu(b.batchNorm(b.conv(y, { filters: c, kernel: 3, group: c })));
    const out = c === 256 ? 1024 : 256;
    y = b.relu(b.batchNorm(b.conv(y, { filters: out, kernel: 1, bias: true })));
    bytes += 4 * (c * 9 + c * out + out + 4 * c + 4 * out);
  }
  return b.build([y]);
}

const dir = mkdtempSync(join(tmpdir(), 'fcm-bench-'));
try {
  const path = join(dir, 'big.onnx');
  const bytes = exportOnnx(bigModel());
  writeFileSync(path, bytes);
  const times: number[] = [];
  let nodes = 0;
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    const g = await importOnnx(path);
    times.push(performance.now() - t0);
    nodes = g.nodes.length;
  }
  times.sort((a, b) => a - b);
  const mb = bytes.byteLength / 1024 / 1024;
  console.log(`importOnnx ${mb.toFixed(1)} MB (${nodes} nodes): median ${times[2].toFixed(1)} ms, min ${times[0].toFixed(1)} ms over 5 runs (goal < 1000 ms)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
