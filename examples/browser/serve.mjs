// Serves the example page: `npm run build && node scripts/build-browser.mjs && node examples/browser/serve.mjs`, then
// open http://127.0.0.1:8080/examples/browser/ in a browser with WebGPU. It serves the page, the browser build,
// hw_configs/, models/ and fixtures/bundled/, and at /ort/ the pinned onnxruntime-web (fetched once with npm pack
// into ~/.cache/fcm-opt/onnxruntime-web) for the comparison.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const { fetchPinnedTarball, untar } = await import(pathToFileURL(join(root, 'dist/src/bench/pinned.js')).href);

/** onnxruntime-web, pinned by the SHA-256 of its npm tarball. */
export const ortWeb = { spec: 'onnxruntime-web@1.30.0', tarball: 'onnxruntime-web-1.30.0.tgz', sha256: 'd2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71' };

/** The folder holding onnxruntime-web's dist/ files (the WebGPU bundle and its WASM). */
export async function ensureOrtWeb(cache = join(process.env.XDG_CACHE_HOME ?? join(process.env.HOME ?? '/tmp', '.cache'), 'fcm-opt', 'onnxruntime-web')) {
  const dir = join(cache, ortWeb.sha256.slice(0, 12));
  if (existsSync(join(dir, 'ort.webgpu.bundle.min.mjs'))) return dir;
  const tgz = await fetchPinnedTarball(ortWeb, cache);
  mkdirSync(dir, { recursive: true });
  for (const [path, bytes] of untar(gunzipSync(readFileSync(tgz)), 'package/dist/')) {
    if (/^ort\.webgpu\.bundle\.min\.mjs$|^ort-wasm-simd-threaded(\.[a-z]+)?\.(wasm|mjs)$/.test(path)) writeFileSync(join(dir, path), bytes);
  }
  return dir;
}

const served = ['examples/browser/', 'dist/browser/', 'hw_configs/', 'models/', 'fixtures/bundled/'];

/** The files of the example: url path -> bytes, or undefined. `ortDir`: onnxruntime-web's files, or none. */
export function exampleRoutes(ortDir) {
  return (url) => {
    if (url === '/' || url === '/examples/browser') url = '/examples/browser/';
    if (url.endsWith('/')) url += 'index.html';
    if (url.startsWith('/ort/')) {
      const f = ortDir && normalize(join(ortDir, url.slice(5)));
      return f && f.startsWith(ortDir + sep) && existsSync(f) ? readFileSync(f) : undefined;
    }
    const rel = normalize(url.slice(1));
    if (!served.some((p) => rel.startsWith(p))) return undefined;
    const f = join(root, rel);
    return existsSync(f) ? readFileSync(f) : undefined;
  };
}

const mime = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.env.PORT ?? 8080);
  const routes = exampleRoutes(await ensureOrtWeb().catch((e) => { console.error(`onnxruntime-web not served: ${e.message}`); return undefined; }));
  http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const body = routes(url);
    if (body === undefined) { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', mime[extname(url.endsWith('/') ? 'x.html' : url)] ?? 'application/octet-stream');
    res.end(body);
  }).listen(port, '127.0.0.1', () => console.log(`http://127.0.0.1:${port}/examples/browser/`));
}
