// Keras files that are not TF.js: Keras 3 `.keras` (a zip of config.json and model.weights.h5) and legacy Keras 2
// `.h5` (HDF5 with the model config as the root attribute `model_config`). HDF5 is read by h5wasm (the HDF5 C
// library in WebAssembly) from the bytes, which come through the input gate. Weights are named `layer/weight` as in
// a TF.js manifest and handed to the same layer conversion (import.ts).
import { invalid, unsupported } from '../../src/errors.js';
import { readInputFile } from '../../src/input-file.js';
import type { Graph } from '../../src/graph/ir.js';
import { defaultMaxMemory, type ImportOptions } from '../options.js';
import { isZip, unzip } from '../zip.js';
import { graphFromKerasConfig, type Json } from './import.js';

type Weights = Map<string, { shape: number[]; data: Float32Array }>;

export const isHdf5 = (b: Uint8Array) => b.length >= 8 && b[0] === 0x89 && b[1] === 0x48 && b[2] === 0x44 && b[3] === 0x46 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a;

interface H5Node { keys?: () => string[]; get?: (p: string) => H5Node | null; shape?: number[] | null; value?: unknown; type?: string; attrs?: Record<string, { value: unknown }> }

let fileCounter = 0;
/** Opens HDF5 bytes with h5wasm (in its in-memory file system); `use` reads it, then the file is removed. */
async function withHdf5<T>(bytes: Uint8Array, source: string, use: (f: H5Node) => T): Promise<T> {
  const h5 = (await import('h5wasm/node')).default;
  const mod = await h5.ready;
  const path = `/fcm-opt-${process.pid}-${fileCounter++}.h5`;
  mod.FS.writeFile(path, bytes);
  let f: { close(): void } & H5Node;
  try {
    f = new h5.File(path, 'r') as unknown as { close(): void } & H5Node;
  } catch (e) {
    mod.FS.unlink(path);
    throw invalid(source, `HDF5 file cannot be opened (${(e as Error).message})`);
  }
  try {
    return use(f);
  } finally {
    f.close();
    mod.FS.unlink(path);
  }
}

const floatOf = (v: unknown): Float32Array => (v instanceof Float32Array ? v : Float32Array.from(v as ArrayLike<number>, Number));

/** Variable names of a layer's weights in the order Keras 3 stores them (vars/0, vars/1, ...). */
function varNames(cls: string, cfg: Json): string[] {
  const bias = cfg.use_bias !== false ? ['bias'] : [];
  switch (cls) {
    case 'Conv2D': case 'Conv2DTranspose': case 'Dense': return ['kernel', ...bias];
    case 'DepthwiseConv2D': return ['depthwise_kernel', ...bias];
    case 'SeparableConv2D': return ['depthwise_kernel', 'pointwise_kernel', ...bias];
    case 'Normalization': return cfg.mean === undefined || cfg.mean === null ? ['mean', 'variance', 'count'] : [];
    case 'BatchNormalization': return [...(cfg.scale !== false ? ['gamma'] : []), ...(cfg.center !== false ? ['beta'] : []), 'moving_mean', 'moving_variance'];
    default: return [];
  }
}

/** Keras's naming.to_snake_case: the group name Keras 3 gives a layer's weights ('DepthwiseConv2D' -> 'depthwise_conv2d'). */
export function snakeCase(cls: string): string {
  return cls.replace(/\W+/g, '').replace(/(.)([A-Z][a-z]+)/g, '$1_$2').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase();
}

/**
 * Keras 3 weights: a model's layers are groups under `layers/`, named by their class in snake case, numbered in
 * order among layers of the same class (conv2d, conv2d_1, ...), each with `vars/0, 1, ...`; a nested model has its
 * own `layers/`. Named `<layer>/<weight>` (nested: `<outer>/<layer>/<weight>`) for the layer conversion.
 */
function keras3Weights(f: H5Node, cfg: Json, source: string): Weights {
  const w: Weights = new Map();
  const container = (g: H5Node | null, model: Json, prefix: string) => {
    const c = model.config as Json | unknown[] | undefined;
    const layers = (Array.isArray(c) ? c : (c as Json | undefined)?.layers) as Json[] | undefined;
    if (!Array.isArray(layers) || !g) return;
    const used = new Map<string, number>();
    for (const l of layers) {
      const cls = String(l.class_name);
      const lc = (l.config ?? {}) as Json;
      const name = String(l.name ?? lc.name);
      const base = snakeCase(cls);
      const n = used.has(base) ? used.get(base)! + 1 : 0;
      used.set(base, n);
      const group = g.get?.(`layers/${n === 0 ? base : `${base}_${n}`}`) ?? g.get?.(`layers/${name}`) ?? null;
      if (Array.isArray(lc.layers)) { container(group, l, `${prefix}${name}/`); continue; }
      const names = varNames(cls, lc);
      if (names.length === 0) continue;
      const vars = group?.get?.('vars');
      const keys = (vars?.keys?.() ?? []).sort((a, b) => Number(a) - Number(b));
      if (!vars || keys.length !== names.length) {
        throw invalid(source, `layer '${name}' (${cls}): model.weights.h5 has ${keys.length} weights for it, expected ${names.length}`);
      }
      keys.forEach((k, i) => {
        const d = vars.get!(k)!;
        w.set(`${prefix}${name}/${names[i]}`, { shape: [...(d.shape ?? [])], data: floatOf(d.value) });
      });
    }
  };
  container(f, cfg, '');
  return w;
}

/** Keras 2 `.h5` weights: `model_weights/<layer>/.../<weight>:0`, named `<innermost layer>/<weight>`. */
function legacyWeights(f: H5Node): Weights {
  const w: Weights = new Map();
  const root = f.get?.('model_weights') ?? f;
  const walk = (g: H5Node, path: string[]) => {
    for (const k of g.keys?.() ?? []) {
      const child = g.get!(k)!;
      if (child.type === 'Group') walk(child, [...path, k]);
      else if (child.type === 'Dataset') {
        const name = k.replace(/:\d+$/, '');
        w.set(`${path[path.length - 1]}/${name}`, { shape: [...(child.shape ?? [])], data: floatOf(child.value) });
      }
    }
  };
  walk(root, []);
  return w;
}

const decode = (b: Uint8Array) => new TextDecoder('utf-8').decode(b);

/** Imports a Keras 3 `.keras` archive or a legacy Keras `.h5` file (path or bytes). */
export async function importKerasFile(input: string | Uint8Array, opts: ImportOptions = {}): Promise<Graph> {
  const source = opts.source ?? (typeof input === 'string' ? input : 'model.keras');
  const bytes = typeof input === 'string' ? await readInputFile(input, { source, maxBytes: opts.maxMemory ?? defaultMaxMemory }) : input;
  if (isZip(bytes)) {
    const files = unzip(bytes, source);
    const cfgBytes = files.get('config.json');
    const h5 = files.get('model.weights.h5');
    if (!cfgBytes || !h5) throw invalid(source, 'a .keras archive needs config.json and model.weights.h5');
    let cfg: Json;
    try { cfg = JSON.parse(decode(cfgBytes)) as Json; } catch (e) { throw invalid(source, `config.json is not valid JSON (${(e as Error).message})`); }
    const meta = files.get('metadata.json');
    const version = meta ? String((JSON.parse(decode(meta)) as Json).keras_version ?? '3') : '3';
    const weights = await withHdf5(h5, `${source}: model.weights.h5`, (f) => keras3Weights(f, cfg, source));
    return graphFromKerasConfig(cfg, weights, version, source, opts);
  }
  if (isHdf5(bytes)) {
    return withHdf5(bytes, source, (f) => {
      // h5py writes the config as a string; some writers store its bytes.
      const raw = f.attrs?.model_config?.value;
      const mc = raw instanceof Uint8Array ? decode(raw) : Array.isArray(raw) && typeof raw[0] === 'string' ? raw[0] : raw;
      if (typeof mc !== 'string') throw unsupported(source, 'HDF5 file has no model_config attribute (a weights-only file?)');
      let cfg: Json;
      try { cfg = JSON.parse(mc) as Json; } catch (e) { throw invalid(source, `model_config is not valid JSON (${(e as Error).message})`); }
      const version = String(f.attrs?.keras_version?.value ?? '2');
      return graphFromKerasConfig(cfg, legacyWeights(f), version, source, opts);
    });
  }
  throw invalid(source, 'is neither a .keras archive (zip) nor a Keras .h5 file (HDF5)');
}
