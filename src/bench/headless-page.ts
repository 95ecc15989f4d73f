// A page in headless Chromium that posts one JSON result back: a local HTTP server hands out the page's files
// (routes), and the result arrives as a POST to /result. Used for LiteRT.js (src/bench/litert.ts) and the browser
// build's tests.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';

export const chromiumPath = () => process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Flags under which Debian's headless Chromium exposes WebGPU on a Vulkan driver (lavapipe included). */
export const webgpuFlags = ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=vulkan'];

export interface HeadlessPageOptions {
  /** The page's URL path (served by `routes`), default /page.html. */
  page?: string;
  timeoutMs?: number;
  /** Chromium's stderr to ours. */
  verbose?: boolean;
  chromium?: string;
  /** More Chromium flags (e.g. webgpuFlags); '--disable-gpu' is passed unless one of them enables WebGPU. */
  flags?: string[];
  /** Serve with COOP/COEP headers (SharedArrayBuffer, threaded WASM). */
  crossOriginIsolated?: boolean;
}

const mime: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.html': 'text/html', '.wasm': 'application/wasm', '.json': 'application/json', '.map': 'application/json' };

/** Opens the page and resolves with the JSON it POSTs to /result. `routes(path)`: a file's bytes, or undefined (404). */
export async function runHeadlessPage(routes: (path: string) => string | Uint8Array | undefined, opts: HeadlessPageOptions = {}): Promise<unknown> {
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const chromium = opts.chromium ?? chromiumPath();
  if (!existsSync(chromium)) throw new Error(`no Chromium at ${chromium} (install Debian's 'chromium' or set CHROMIUM)`);
  const profile = mkdtempSync(join(tmpdir(), 'fcm-chromium-'));
  let browser: ChildProcess | undefined;
  let finish!: { resolve: (v: unknown) => void; reject: (e: Error) => void };
  const done = new Promise<unknown>((resolve, reject) => { finish = { resolve, reject }; });
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    if (opts.crossOriginIsolated) {
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
    const body = routes(url);
    if (body === undefined) { res.statusCode = 404; res.end(); return; }
    res.setHeader('content-type', mime[extname(url)] ?? 'application/octet-stream');
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const timer = setTimeout(() => finish.reject(new Error(`the page gave no result in ${timeoutMs / 1000} s`)), timeoutMs);
  try {
    const { port } = server.address() as AddressInfo;
    const flags = opts.flags ?? [];
    browser = spawn(chromium, [
      '--headless=new', '--no-sandbox', ...(flags.includes('--enable-unsafe-webgpu') ? [] : ['--disable-gpu']), ...flags,
      '--disable-background-networking', '--disable-component-update', '--no-first-run', '--no-default-browser-check',
      `--user-data-dir=${profile}`, `http://127.0.0.1:${port}${opts.page ?? '/page.html'}`,
    ], { stdio: ['ignore', 'ignore', opts.verbose ? 'inherit' : 'ignore'], detached: true });
    browser.on('error', (e) => finish.reject(e));
    browser.on('exit', (code) => finish.reject(new Error(`Chromium exited (${code}) before the page posted a result`)));
    return await done;
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

