// Records what a real TFLite interpreter computes on fcm-opt's int8 test models: LiteRT.js (TFLite compiled to
// WASM, npm @litertjs/core, pinned by the SHA-256 of its tarball) in headless Chromium, twice per model:
//
//   xnnpack         accelerator 'wasm': LiteRT's CPU accelerator, the XNNPACK delegate, with TFLite's builtin
//                   kernels for the ops XNNPACK does not take;
//   webnn-fallback  accelerator 'webnn' in a browser without WebNN: LiteRT warns that the model is not fully
//                   delegated and runs it on its CPU path. That path is still XNNPACK (it rounds the tie probe's
//                   exact ties to even, as XNNPACK's float requantization does and no TFLite builtin kernel does);
//                   LiteRT.js 2.5.3 offers no switch to TFLite's builtin kernels alone.
//
// The outputs go to test/data/tflite-oracle/<model>.json with the SHA-256 of the model and of every input, which
// test/quant/tflite-oracle.test.ts checks before comparing (a changed builder fails loudly).
//
//   npm run build && node scripts/record-tflite-oracle.mjs            # all models of fixtures/tflite-oracle.ts
//   node scripts/record-tflite-oracle.mjs oracle-ops                   # some
//
// Needs Chromium (/usr/bin/chromium, or CHROMIUM=path) and npm (to fetch the pinned tarballs once into the ignored
// .cache/litertjs/). The runner is src/bench/litert.ts, which `fcm-opt bench` uses for its LiteRT.js contestant.

import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const dataDir = join(root, 'test', 'data', 'tflite-oracle');
const liteRtJs = join(root, 'dist', 'src', 'bench', 'litert.js');
if (!existsSync(liteRtJs)) throw new Error(`${liteRtJs} is missing: run npm run build first`);
const liteRt = await import(pathToFileURL(liteRtJs).href);
export const { liteRtPackages } = liteRt;
/** LiteRT.js in headless Chromium (src/bench/litert.ts), its packages cached in the ignored .cache/litertjs/. */
export const runLiteRt = (job, blobs, opts = {}) => liteRt.runLiteRt(job, blobs, { cacheDir: join(root, '.cache', 'litertjs'), ...opts });

/**
 * Accelerator settings recorded per model: name in the record -> LiteRT.js accelerator option. LiteRT.js has no
 * option to turn XNNPACK off; 'webnn' in a browser without WebNN is the only other CPU route it takes. It falls back
 * to the same CPU accelerator: the tie-probe record shows XNNPACK's round-half-to-even in both.
 */
export const oracleAccelerators = { xnnpack: 'wasm', 'webnn-fallback': 'webnn' };

async function record(names) {
  const fixtures = join(root, 'dist', 'fixtures', 'tflite-oracle.js');
  if (!existsSync(fixtures)) throw new Error(`${fixtures} is missing: run npm run build first`);
  const { oracleModels, inputBytes, sha256: sha } = await import(pathToFileURL(fixtures).href);
  const models = names.length ? oracleModels.filter((m) => names.includes(m.name)) : oracleModels;
  if (names.length && models.length !== names.length) throw new Error(`unknown model among ${names.join(', ')} (known: ${oracleModels.map((m) => m.name).join(', ')})`);
  const blobs = {};
  const runs = [];
  const meta = [];
  for (const m of models) {
    const bytes = m.bytes();
    blobs[`/model/${m.name}.tflite`] = bytes;
    const inputs = m.seeds.map((seed) => {
      const x = m.inputs(seed);
      const b = inputBytes(x);
      blobs[`/input/${m.name}/${seed}.bin`] = b;
      return { seed, dtype: x.dtype, shape: x.shape, sha256: sha(b), url: `/input/${m.name}/${seed}.bin` };
    });
    meta.push({ m, modelSha256: sha(bytes), modelBytes: bytes.length, inputs });
    for (const [label, accelerator] of Object.entries(oracleAccelerators)) {
      runs.push({ name: `${m.name}/${label}`, model: `/model/${m.name}.tflite`, accelerator, inputs: inputs.map(({ url, dtype, shape }) => ({ url, dtype, shape })) });
    }
  }
  const result = await runLiteRt({ runs }, blobs);
  mkdirSync(dataDir, { recursive: true });
  const arrays = { int8: Int8Array, uint8: Uint8Array, float32: Float32Array, int32: Int32Array };
  const b64 = (dtype, values) => Buffer.from(new arrays[dtype](values).buffer).toString('base64');
  for (const { m, modelSha256, modelBytes, inputs } of meta) {
    const outputs = {};
    let outputDetails;
    for (const label of Object.keys(oracleAccelerators)) {
      const r = result.runs.find((x) => x.name === `${m.name}/${label}`);
      outputDetails = r.outputDetails;
      outputs[label] = r.results.map((res) => res.outputs.map((o) => b64(o.dtype, o.data)));
    }
    // Outputs equal to the first accelerator's are stored once (the taps records are large).
    const [first, ...others] = Object.keys(outputs);
    for (const k of others) if (outputs[k].flat().join() === outputs[first].flat().join()) outputs[k] = `same as ${first}`;
    const rec = {
      model: m.name,
      builder: `fixtures/tflite-oracle.ts oracleModels '${m.name}': ${m.builder}`,
      modelSha256,
      modelBytes,
      interpreter: `${liteRtPackages.core.spec} (tarball SHA-256 ${liteRtPackages.core.sha256}), ${result.userAgent}`,
      accelerators: Object.fromEntries(Object.entries(oracleAccelerators).map(([k, v]) => [k, `accelerator '${v}'`])),
      inputs: inputs.map(({ seed, dtype, shape, sha256: h }) => ({ seed, dtype, shape, sha256: h })),
      outputDetails,
      encoding: 'outputs[accelerator][input][output]: the bytes of the output tensor (little-endian, dtype of outputDetails), base64; or "same as <accelerator>"',
      outputs,
    };
    const file = join(dataDir, `${m.name}.json`);
    writeFileSync(`${file}.tmp`, `${JSON.stringify(rec, null, 1)}\n`);
    renameSync(`${file}.tmp`, file);
    const agree = others.every((k) => typeof outputs[k] === 'string');
    console.log(`${m.name}: ${file} (${outputDetails.length} outputs x ${inputs.length} inputs; the accelerators ${agree ? 'agree' : 'DIFFER'})`);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  await record(process.argv.slice(2));
}
