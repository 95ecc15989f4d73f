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
// .cache/litertjs/). From code: `runLiteRt(job)` runs any job (the bench uses it for latency).

import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { untar } from './fetch-models.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const liteRtDir = join(root, '.cache', 'litertjs');
const pageDir = join(root, 'scripts', 'tflite-oracle');
export const dataDir = join(root, 'test', 'data', 'tflite-oracle');

/** Pinned packages: tarball SHA-256 computed when pinned (npm registry). */
export const liteRtPackages = {
  core: { spec: '@litertjs/core@2.5.3', tarball: 'litertjs-core-2.5.3.tgz', sha256: 'a97660833e9e7e1063c95e12016718881240b14f7438728a2f62785e912d30fd' },
  'wasm-utils': { spec: '@litertjs/wasm-utils@2.5.3', tarball: 'litertjs-wasm-utils-2.5.3.tgz', sha256: 'ce2a1f8379c067be49e59752e5a7f40db6be09f6e497f0f11e59f17b515366a7' },
};

const run = promisify(execFile);
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');


/** The unpacked pinned packages (fetched with `npm pack` and checked on first use); returns their folders. */
export async function ensureLiteRt() {
  const dirs = {};
  for (const [key, p] of Object.entries(liteRtPackages)) {
    const dir = join(liteRtDir, `${key}-${p.sha256.slice(0, 12)}`);
    dirs[key] = dir;
    if (existsSync(join(dir, 'package.json'))) continue;
    const tgz = join(liteRtDir, p.tarball);
    if (!existsSync(tgz) || sha256(readFileSync(tgz)) !== p.sha256) {
      mkdirSync(liteRtDir, { recursive: true });
      const tmp = mkdtempSync(join(liteRtDir, 'pack-'));
      try {
        const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
        await run(npm, ['pack', p.spec, '--silent', '--pack-destination', tmp], { cwd: tmp, maxBuffer: 1 << 24 });
        const got = readFileSync(join(tmp, p.tarball));
        const hash = sha256(got);
        if (hash !== p.sha256) throw new Error(`${p.spec}: tarball SHA-256 ${hash} does not match the pinned ${p.sha256}`);
        renameSync(join(tmp, p.tarball), tgz);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
    const tmpDir = `${dir}.tmp-${process.pid}`;
    rmSync(tmpDir, { recursive: true, force: true });
    for (const [path, bytes] of untar(gunzipSync(readFileSync(tgz)), 'package/')) {
      mkdirSync(dirname(join(tmpDir, path)), { recursive: true });
      writeFileSync(join(tmpDir, path), bytes);
    }
    renameSync(tmpDir, dir);
  }
  return dirs;
}

const mime = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.json': 'application/json', '.map': 'application/json' };

/**
 * Runs a job in headless Chromium and returns what the page posts back. job: { runs, threads? }, its urls served
 * from `blobs` (url path -> bytes). threads: LiteRT's threaded WASM build, which needs cross-origin isolation (the
 * server sends COOP/COEP headers then).
 */
export async function runLiteRt(job, blobs, { timeoutMs = 300_000, verbose = false } = {}) {
  const dirs = await ensureLiteRt();
  const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(chromium)) throw new Error(`no Chromium at ${chromium} (set CHROMIUM)`);
  const profile = mkdtempSync(join(tmpdir(), 'fcm-litert-'));
  let browser;
  let finish;
  const done = new Promise((resolve, reject) => { finish = { resolve, reject }; });
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    if (job.threads) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    if (req.method === 'POST' && url === '/result') {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        res.end('ok');
        try { finish.resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch (e) { finish.reject(e); }
      });
      return;
    }
    let body;
    let type = mime[extname(url)] ?? 'application/octet-stream';
    if (url === '/job.json') { body = JSON.stringify(job); type = mime['.json']; }
    else if (url === '/page.html' || url === '/page.js') body = readFileSync(join(pageDir, url.slice(1)));
    else if (blobs[url]) body = blobs[url];
    else {
      const m = /^\/litert\/(core|wasm-utils)\/(.*)$/.exec(url);
      const file = m && normalize(join(dirs[m[1]], m[2]));
      if (file && file.startsWith(dirs[m[1]]) && existsSync(file)) body = readFileSync(file);
    }
    if (body === undefined) { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', type);
    res.end(body);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const timer = setTimeout(() => finish.reject(new Error(`LiteRT.js page gave no result in ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    const { port } = server.address();
    browser = spawn(chromium, [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--no-default-browser-check', `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/page.html`,
    ], { stdio: ['ignore', 'ignore', verbose ? 'inherit' : 'ignore'], detached: true });
    browser.on('exit', (code) => finish.reject(new Error(`Chromium exited (${code}) before the page posted a result`)));
    const result = await done;
    if (!result.ok) throw new Error(`LiteRT.js page failed: ${result.error}\n${result.log.join('\n')}`);
    return result;
  } finally {
    clearTimeout(timer);
    if (browser && browser.exitCode === null) {
      browser.removeAllListeners('exit');
      const exited = new Promise((resolve) => browser.once('exit', resolve));
      // Chromium's own process group (detached above): the browser and the helpers it started.
      try { process.kill(-browser.pid, 'SIGTERM'); } catch { browser.kill('SIGTERM'); }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    }
    server.close();
    try { rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); } catch { /* a helper still writing: leave the temp profile */ }
  }
}

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
