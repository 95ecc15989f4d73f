// node:path in the browser build: the POSIX functions the loaders use on names ('/'-separated; no current folder).
export const sep = '/';
export const isAbsolute = (p: string) => p.startsWith('/');

export function normalize(p: string): string {
  const abs = isAbsolute(p);
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') { if (out.length && out[out.length - 1] !== '..') out.pop(); else if (!abs) out.push('..'); } else out.push(part);
  }
  const s = out.join('/');
  return abs ? `/${s}` : s || '.';
}

export const join = (...parts: string[]) => normalize(parts.filter((x) => x !== '').join('/'));
export const resolve = (...parts: string[]) => {
  let p = '';
  for (const x of parts) p = isAbsolute(x) ? x : p ? `${p}/${x}` : x;
  return normalize(isAbsolute(p) ? p : `/${p}`);
};
export function basename(p: string, ext?: string): string {
  const b = p.replace(/\/+$/, '').split('/').pop() ?? '';
  return ext && b.endsWith(ext) && b !== ext ? b.slice(0, -ext.length) : b;
}
export function dirname(p: string): string {
  const t = p.replace(/\/+$/, '');
  const i = t.lastIndexOf('/');
  return i < 0 ? '.' : i === 0 ? '/' : t.slice(0, i);
}
export function extname(p: string): string {
  const b = basename(p);
  const i = b.lastIndexOf('.');
  return i <= 0 ? '' : b.slice(i);
}
