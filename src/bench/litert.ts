// LiteRT.js (Google's TFLite runtime compiled to WASM, npm @litertjs/core, pinned by the SHA-256 of its tarball)
// in headless Chromium: the bench's contestant for .tflite models, where onnxruntime cannot read the file, and the
// int8 oracle's recorder (scripts/record-tflite-oracle.mjs). A local HTTP server hands the page a job and the
// pinned package files; the page posts its results back.
//
// A job: { runs: [{ name, model (url), accelerator ('wasm': XNNPACK on the CPU; 'webnn' without WebNN falls back
// to the same path), inputs: [{ url, dtype, shape }] or 'random', timing?: { warmup, iterations } }], threads? }.
// With timing, outputs are not sent back. threads: LiteRT's threaded WASM build, which needs cross-origin
// isolation (the server then sends COOP/COEP headers).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fetchPinnedTarball, type PinnedTarball, untar } from './pinned.js';

/** The pinned packages (tarball SHA-256 computed when pinned, from the npm registry). */
export const liteRtPackages: Record<'core' | 'wasm-utils', PinnedTarball> = {
  core: { spec: '@litertjs/core@2.5.3', tarball: 'litertjs-core-2.5.3.tgz', sha256: 'a97660833e9e7e1063c95e12016718881240b14f7438728a2f62785e912d30fd' },
  'wasm-utils': { spec: '@litertjs/wasm-utils@2.5.3', tarball: 'litertjs-wasm-utils-2.5.3.tgz', sha256: 'ce2a1f8379c067be49e59752e5a7f40db6be09f6e497f0f11e59f17b515366a7' },
};

export const liteRtVersion = liteRtPackages.core.spec.split('@').pop()!;

/** Where the packages are cached: $FCM_OPT_CACHE_DIR, else $XDG_CACHE_HOME/fcm-opt, else ~/.cache/fcm-opt. */
export function defaultLiteRtCache(): string {
  const base = process.env.FCM_OPT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'fcm-opt');
  return join(base, 'litertjs');
}

/** The unpacked pinned packages in `cacheDir` (fetched with `npm pack` and checked on first use): their folders. */
export async function ensureLiteRt(cacheDir = defaultLiteRtCache()): Promise<Record<'core' | 'wasm-utils', string>> {
  const dirs = {} as Record<'core' | 'wasm-utils', string>;
  for (const key of ['core', 'wasm-utils'] as const) {
    const p = liteRtPackages[key];
    const dir = join(cacheDir, `${key}-${p.sha256.slice(0, 12)}`);
    dirs[key] = dir;
    if (existsSync(join(dir, 'package.json'))) continue;
    const tgz = await fetchPinnedTarball(p, cacheDir);
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

export interface LiteRtRunResult {
  name: string;
  accelerator: string;
  compileMs: number;
  fullyAccelerated: boolean;
  outputDetails: Array<{ name: string; dtype: string; shape: number[] }>;
  results: Array<{ input: string; outputs: Array<{ dtype: string; shape: number[]; data: number[] }>; timing?: number[] }>;
}

export interface LiteRtResult {
  ok: true;
  userAgent: string;
  crossOriginIsolated: boolean;
  runs: LiteRtRunResult[];
  log: string[];
}

export interface LiteRtJob {
  runs: Array<{ name: string; model: string; accelerator: string; inputs: 'random' | Array<{ url: string; dtype: string; shape: number[] }>; timing?: { warmup: number; iterations: number } }>;
  threads?: boolean;
}

export interface LiteRtOptions {
  timeoutMs?: number;
  /** Chromium's stderr to ours. */
  verbose?: boolean;
  cacheDir?: string;
  /** The Chromium binary (default $CHROMIUM or /usr/bin/chromium). */
  chromium?: string;
}

export const chromiumPath = () => process.env.CHROMIUM ?? '/usr/bin/chromium';

const mime: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.json': 'application/json', '.map': 'application/json' };

/** Runs `job` in headless Chromium, serving its urls from `blobs` (url path -> bytes), and returns what the page posts. */
export async function runLiteRt(job: LiteRtJob, blobs: Record<string, Uint8Array>, opts: LiteRtOptions = {}): Promise<LiteRtResult> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const chromium = opts.chromium ?? chromiumPath();
  if (!existsSync(chromium)) throw new Error(`no Chromium at ${chromium} (install Debian's 'chromium' or set CHROMIUM)`);
  const dirs = await ensureLiteRt(opts.cacheDir);
  const profile = mkdtempSync(join(tmpdir(), 'fcm-litert-'));
  let browser: ChildProcess | undefined;
  let finish!: { resolve: (v: unknown) => void; reject: (e: Error) => void };
  const done = new Promise<unknown>((resolve, reject) => { finish = { resolve, reject }; });
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (job.threads) {
      res.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    if (req.method === 'POST' && url === '/result') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.end('ok');
        try { finish.resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))); } catch (e) { finish.reject(e as Error); }
      });
      return;
    }
    let body: string | Uint8Array | undefined;
    let type = mime[extname(url)] ?? 'application/octet-stream';
    if (url === '/job.json') { body = JSON.stringify(job); type = mime['.json']; }
    else if (url === '/page.html') body = pageHtml;
    else if (url === '/page.js') body = pageJs;
    else if (blobs[url]) body = blobs[url];
    else {
      const m = /^\/litert\/(core|wasm-utils)\/(.*)$/.exec(url);
      if (m) {
        const base = dirs[m[1] as 'core' | 'wasm-utils'];
        const file = normalize(join(base, m[2]));
        if (file.startsWith(base + sep) && existsSync(file)) body = readFileSync(file);
      }
    }
    if (body === undefined) { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', type);
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const timer = setTimeout(() => finish.reject(new Error(`the LiteRT.js page gave no result in ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    const { port } = server.address() as AddressInfo;
    browser = spawn(chromium, [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--no-default-browser-check', `--user-data-dir=${profile}`, `http://127.0.0.1:${port}/page.html`,
    ], { stdio: ['ignore', 'ignore', opts.verbose ? 'inherit' : 'ignore'], detached: true });
    browser.on('error', (e) => finish.reject(e));
    browser.on('exit', (code) => finish.reject(new Error(`Chromium exited (${code}) before the page posted a result`)));
    const result = (await done) as (LiteRtResult | { ok: false; error: string; log: string[] });
    if (!result.ok) throw new Error(`the LiteRT.js page failed: ${result.error}\n${result.log.join('\n')}`);
    return result;
  } finally {
    clearTimeout(timer);
    if (browser && browser.exitCode === null && browser.pid !== undefined) {
      const b = browser;
      b.removeAllListeners('exit');
      const exited = new Promise((resolve) => b.once('exit', resolve));
      // Chromium's own process group (detached above): the browser and the helpers it started.
      try { process.kill(-b.pid!, 'SIGTERM'); } catch { b.kill('SIGTERM'); }
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
    }
    server.close();
    try { rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 }); } catch { /* a helper still writing: leave the temp profile */ }
  }
}

/** The page: an import map to the served packages. */
const pageHtml = `<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>LiteRT.js oracle</title>
<!-- The server maps /litert/core/ and /litert/wasm-utils/ to the pinned packages in the cache. -->
<script type="importmap">{"imports":{"@litertjs/core":"/litert/core/dist/index.js","@litertjs/wasm-utils":"/litert/wasm-utils/dist/index.js"}}</script>
</head>
<body><script type="module" src="/page.js"></script></body>
</html>
`;

/** The page's script: runs the job with LiteRT.js and posts every output (or the timings) back. */
const pageJs = `// Runs the job the recording server hands out (/job.json) with LiteRT.js and posts every output back (/result).
// A run: { name, model (url), accelerator, inputs: [{ url, dtype, shape }] or 'random', timing?: { warmup, iterations } }
// (with timing, outputs are not sent back).
// accelerator 'wasm' is LiteRT's CPU accelerator (the XNNPACK delegate); 'webnn' without navigator.ml falls back to
// the same CPU path (see scripts/record-tflite-oracle.mjs).
import { Tensor, loadAndCompile, loadLiteRt } from '@litertjs/core';

const log = [];
for (const level of ['log', 'info', 'warn', 'error']) {
  const orig = console[level].bind(console);
  console[level] = (...args) => { log.push(\`\${level}: \${args.map(String).join(' ')}\`); orig(...args); };
}
const post = (body) => fetch('/result', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
const arrays = { int8: Int8Array, uint8: Uint8Array, float32: Float32Array, int32: Int32Array };
const bytes = async (url) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(\`\${url}: HTTP \${r.status}\`);
  return new Uint8Array(await r.arrayBuffer());
};

try {
  const job = await (await fetch('/job.json')).json();
  await loadLiteRt('/litert/core/wasm/', job.threads ? { threads: true } : undefined);
  const runs = [];
  for (const run of job.runs) {
    const model = await bytes(run.model);
    const t0 = performance.now();
    const compiled = await loadAndCompile(model, { accelerator: run.accelerator });
    const compileMs = performance.now() - t0;
    const outputDetails = compiled.getOutputDetails().map((d) => ({ name: d.name, dtype: d.dtype, shape: Array.from(d.shape) }));
    const results = [];
    // inputs 'random': one set of values in [0, 1) * 255 (or 0..255 for 8-bit types) per model input, for timing.
    const sets = run.inputs === 'random' ? [null] : run.inputs;
    for (const inp of sets) {
      let xs;
      if (inp === null) {
        xs = compiled.getInputDetails().map((d) => {
          const n = d.shape.reduce((a, b) => a * b, 1);
          const data = new arrays[d.dtype](n);
          for (let i = 0; i < n; i++) data[i] = (i * 2654435761 >>> 24) % 255; // a fixed pseudo-random pattern
          return new Tensor(data, Array.from(d.shape));
        });
      } else {
        const raw = await bytes(inp.url);
        const data = new arrays[inp.dtype](raw.buffer, raw.byteOffset, raw.byteLength / arrays[inp.dtype].BYTES_PER_ELEMENT);
        xs = [new Tensor(data, inp.shape)];
      }
      const x = xs;
      const ys = await compiled.run(x);
      const outputs = [];
      for (const y of ys) {
        const d = await y.data();
        outputs.push({ dtype: y.type.dtype, shape: Array.from(y.type.layout.dimensions), data: Array.from(d) });
        y.delete();
      }
      let timing;
      if (run.timing) {
        for (let i = 0; i < run.timing.warmup; i++) for (const y of await compiled.run(x)) y.delete();
        const ms = [];
        for (let i = 0; i < run.timing.iterations; i++) {
          const s = performance.now();
          const out = await compiled.run(x);
          for (const y of out) await y.data();
          ms.push(performance.now() - s);
          for (const y of out) y.delete();
        }
        timing = ms;
      }
      for (const t of x) t.delete();
      results.push({ input: inp === null ? 'random' : inp.url, outputs: run.timing ? [] : outputs, timing });
    }
    runs.push({ name: run.name, accelerator: run.accelerator, compileMs, fullyAccelerated: compiled.isFullyAccelerated, outputDetails, results });
    compiled.delete();
  }
  await post({ ok: true, userAgent: navigator.userAgent, crossOriginIsolated, runs, log });
} catch (e) {
  await post({ ok: false, error: String((e && e.stack) || e), log });
}
`;
