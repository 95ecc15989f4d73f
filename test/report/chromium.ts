// A minimal headless-Chromium driver for the report tests: the DevTools protocol over --remote-debugging-pipe
// (Chromium reads commands on fd 3 and writes replies on fd 4, NUL-terminated JSON), so no WebSocket and no
// dependency. Opens one page, records console errors, exceptions, failed loads and every network request,
// evaluates expressions and takes screenshots.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const haveChromium = () => existsSync(chromiumPath);

interface Pending { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void; method: string }

export class Page {
  /** Console errors, uncaught exceptions and error log entries (CSP violations, failed loads). */
  readonly errors: string[] = [];
  /** URLs the page requested. */
  readonly requests: string[] = [];
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly waiters: Array<{ method: string; resolve: () => void }> = [];
  private buffer = '';
  private sessionId: string | undefined;
  private closed = false;

  private constructor(private readonly proc: ChildProcess, private readonly profile: string) {
    const out = proc.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => {
      this.buffer += chunk;
      let end: number;
      while ((end = this.buffer.indexOf('\0')) >= 0) {
        const text = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 1);
        this.onMessage(JSON.parse(text) as Record<string, unknown>);
      }
    });
    proc.on('exit', (code) => {
      this.closed = true;
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited (${code}) during ${p.method}`));
      this.pending.clear();
    });
  }

  static async open(width: number, height: number): Promise<Page> {
    const profile = mkdtempSync(join(tmpdir(), 'fcm-report-chromium-'));
    const proc = spawn(chromiumPath, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-extensions', '--hide-scrollbars', '--mute-audio',
      `--user-data-dir=${profile}`, '--remote-debugging-pipe', 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    let stderr = '';
    (proc.stdio[2] as Readable).on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000); });
    const page = new Page(proc, profile);
    try {
      const { targetId } = await page.send('Target.createTarget', { url: 'about:blank' }) as { targetId: string };
      const { sessionId } = await page.send('Target.attachToTarget', { targetId, flatten: true }) as { sessionId: string };
      page.sessionId = sessionId;
      await page.send('Runtime.enable');
      await page.send('Log.enable');
      await page.send('Page.enable');
      await page.send('Network.enable');
      await page.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false });
    } catch (e) {
      await page.close();
      throw new Error(`cannot drive ${chromiumPath}: ${(e as Error).message}\n${stderr}`);
    }
    return page;
  }

  private onMessage(msg: Record<string, unknown>): void {
    if (typeof msg.id === 'number') {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${JSON.stringify(msg.error)}`));
      else p.resolve((msg.result ?? {}) as Record<string, unknown>);
      return;
    }
    const method = msg.method as string;
    const params = (msg.params ?? {}) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    if (method === 'Runtime.consoleAPICalled' && (params.type === 'error' || params.type === 'assert')) {
      this.errors.push(`console.${params.type}: ${(params.args ?? []).map((a: { value?: unknown; description?: string }) => a.value ?? a.description).join(' ')}`);
    } else if (method === 'Runtime.exceptionThrown') {
      this.errors.push(`exception: ${params.exceptionDetails?.exception?.description ?? params.exceptionDetails?.text}`);
    } else if (method === 'Log.entryAdded' && params.entry?.level === 'error') {
      this.errors.push(`log: ${params.entry.text} ${params.entry.url ?? ''}`.trim());
    } else if (method === 'Network.requestWillBeSent') {
      this.requests.push(params.request?.url);
    } else if (method === 'Network.loadingFailed' && !params.canceled) {
      this.errors.push(`load failed: ${params.errorText}`);
    }
    for (let i = this.waiters.length - 1; i >= 0; i--) {
      if (this.waiters[i].method === method) {
        this.waiters[i].resolve();
        this.waiters.splice(i, 1);
      }
    }
  }

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(new Error(`chromium is closed (${method})`));
    const id = this.nextId++;
    const msg: Record<string, unknown> = { id, method, params };
    if (this.sessionId && !method.startsWith('Target.') && !method.startsWith('Browser.')) msg.sessionId = this.sessionId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`${method}: no reply in 30 s`));
      }, 30_000);
      this.pending.set(id, {
        method,
        resolve: (v) => { clearTimeout(timer); resolve(v); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
      (this.proc.stdio[3] as Writable).write(`${JSON.stringify(msg)}\0`);
    });
  }

  /** Navigates and waits for the load event. */
  async goto(url: string): Promise<void> {
    const loaded = new Promise<void>((resolve) => this.waiters.push({ method: 'Page.loadEventFired', resolve }));
    const r = await this.send('Page.navigate', { url });
    if (r.errorText) throw new Error(`navigate ${url}: ${r.errorText}`);
    await loaded;
  }

  /** The value of a JavaScript expression in the page (returned by value, so JSON-like). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, returnByValue: true }) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (r.exceptionDetails) throw new Error(`evaluate: ${r.exceptionDetails.text}`);
    return r.result.value;
  }

  /** A PNG of the viewport. */
  async screenshot(): Promise<Buffer> {
    const r = await this.send('Page.captureScreenshot', { format: 'png' }) as { data: string };
    return Buffer.from(r.data, 'base64');
  }

  async close(): Promise<void> {
    if (!this.closed) {
      const exited = new Promise<void>((resolve) => this.proc.once('exit', () => resolve()));
      await this.send('Browser.close').catch(() => undefined);
      const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.profile, { recursive: true, force: true });
  }
}
