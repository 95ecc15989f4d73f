// Child process of test/fuzz/sigkill-write.test.ts: exports a model with one large initializer and writes
// it with writeFileAtomic (src/export/write-atomic.ts), the way `fcm-opt ... -o OUT.onnx` writes its
// output. The test SIGKILLs it mid-write. Usage: node atomic-write-child.js OUT.onnx MEBIBYTES FILL
import { exportOnnx } from '../../converters/onnx/export.js';
import { writeFileAtomic } from '../export/write-atomic.js';
import { newAttrs, type Graph } from '../graph/ir.js';

async function main(): Promise<void> {
  const [out, mib, fill] = process.argv.slice(2);
  if (!out) return; // run without arguments (e.g. picked up by a test runner): nothing to do
  const n = Math.round((Number(mib) * 2 ** 20) / 4);
  const w = new Float32Array(n).fill(Number(fill ?? 1));
  const g: Graph = {
    name: 'big', inputs: ['x'], outputs: ['y'], source: 'big.onnx',
    tensors: new Map([
      ['x', { name: 'x', dtype: 'float32', shape: [n] }],
      ['w', { name: 'w', dtype: 'float32', shape: [n], data: w }],
      ['y', { name: 'y', dtype: 'float32', shape: [n] }],
    ]),
    nodes: [{ name: 'add', op: 'Add', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: newAttrs() }],
  };
  const bytes = exportOnnx(g);
  process.stdout.write(`writing ${bytes.length}\n`);
  await writeFileAtomic(out, bytes);
  process.stdout.write('done\n');
}

main().catch((e) => { process.stderr.write(`${(e as Error).stack}\n`); process.exitCode = 1; });
