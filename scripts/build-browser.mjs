// Builds the browser library dist/browser/fcm-opt.mjs (ES module, minified, with a source map) from
// src/browser/index.ts with esbuild. The modules that need Node are replaced by the ones in src/browser/ (the page's
// navigator.gpu for Dawn's package, no file system, no onnxruntime-node, no HDF5 or zip for Keras files); any other Node built-in reachable from the
// entry fails the build, so none can reach the bundle. Prints the bundle's size, minified and gzipped.
//
//   node scripts/build-browser.mjs [--outdir dist/browser]

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const outdir = resolve(root, args.includes('--outdir') ? args[args.indexOf('--outdir') + 1] : 'dist/browser');

const replaced = {
  'webgpu-node.js': 'src/browser/webgpu.ts',
  'node:fs': 'src/browser/node-fs.ts',
  'node:fs/promises': 'src/browser/node-fs.ts',
  'node:path': 'src/browser/node-path.ts',
  'node:url': 'src/browser/node-url.ts',
  'node:zlib': 'src/browser/node-zlib.ts',
  'onnxruntime-node': 'src/browser/onnxruntime.ts',
  'h5wasm/node': 'src/browser/h5wasm.ts',
};

const browserModules = {
  name: 'browser-modules',
  setup(b) {
    b.onResolve({ filter: /(^node:|^onnxruntime-node$|^webgpu$|^h5wasm|\/webgpu-node\.js$)/ }, (a) => {
      const key = a.path.endsWith('/webgpu-node.js') ? 'webgpu-node.js' : a.path;
      if (replaced[key]) return { path: join(root, replaced[key]) };
      return { errors: [{ text: `${a.path} (imported by ${a.importer.replace(`${root}/`, '')}) is Node-only and has no browser replacement` }] };
    });
  },
};

const result = await esbuild.build({
  entryPoints: [join(root, 'src/browser/index.ts')],
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: 'external',
  write: false,
  metafile: true,
  outfile: join(outdir, 'fcm-opt.mjs'),
  legalComments: 'eof',
  plugins: [browserModules],
  logLevel: 'warning',
});
mkdirSync(outdir, { recursive: true });
for (const f of result.outputFiles) writeFileSync(f.path, f.contents);
const js = result.outputFiles.find((f) => f.path.endsWith('.mjs')).contents;
const sizes = { minified: js.length, gzip: gzipSync(js, { level: 9 }).length };
writeFileSync(join(outdir, 'size.json'), `${JSON.stringify(sizes)}\n`);
console.log(`${join(outdir, 'fcm-opt.mjs').replace(`${root}/`, '')}: ${(sizes.minified / 1024).toFixed(0)} KiB minified, ${(sizes.gzip / 1024).toFixed(0)} KiB gzipped`);
