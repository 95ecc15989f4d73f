// onnxruntime-node in the browser build: absent, as when the optional peer is not installed (src/onnxruntime.ts then
// says what needs it). Shape inference past ops fcm-opt cannot infer needs it; everything else runs without.
const e = new Error("onnxruntime-node is not part of the browser build") as Error & { code: string };
e.code = 'ERR_MODULE_NOT_FOUND';
throw e;
