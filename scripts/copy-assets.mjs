// Copies non-TypeScript files that the compiled code reads at run time (schemas, WGSL snippets) into dist/.
import { cpSync, existsSync } from 'node:fs';
const assets = ['converters/onnx/onnx.proto', 'converters/onnx/onnx-pb.js', 'converters/onnx/onnx-pb.d.ts', 'converters/tflite/schema.fbs'];
for (const a of assets) if (existsSync(a)) cpSync(a, `dist/${a}`);
