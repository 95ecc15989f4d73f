// Copies non-TypeScript files that the compiled code reads at run time (schemas, WGSL snippets) into dist/.
import { cpSync, existsSync } from 'node:fs';
const assets = ['converters/onnx/onnx.proto', 'converters/tflite/schema.fbs'];
for (const a of assets) if (existsSync(a)) cpSync(a, `dist/${a}`);
