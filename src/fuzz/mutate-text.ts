// Structure-aware mutations of the text inputs: .cfg hardware descriptions (key::value lines), JSON
// (layer DAGs and hardware descriptions: keys, values, ids, parents/children, shapes, missing fields),
// and .npy files (header fields: descr, fortran_order, shape; header length; data length).
import { splitNpy, encodeNpy } from './npy-format.js';
import { interestingInts, Rng } from './rng.js';

const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const enc = (s: string) => new TextEncoder().encode(s);

export const cfgOps = ['deleteLine', 'duplicateLine', 'value', 'key', 'separator', 'noise'] as const;
export type CfgOp = (typeof cfgOps)[number];

const hostileNumbers = ['0', '-1', '-0', 'NaN', 'Infinity', '-Infinity', '1e309', '0x10', '1.5', '', ' ', '1e-320',
  '99999999999999999999', '2147483648', '4294967296', '9007199254740993', '1,5', '1_000', '+3', '0.0001', 'abc', '\u0000'];

export function mutateCfg(input: Uint8Array, op: CfgOp, seed: number): Uint8Array {
  const r = new Rng(seed);
  const lines = dec(input).split('\n');
  const i = r.int(lines.length);
  switch (op) {
    case 'deleteLine': lines.splice(i, 1); break;
    case 'duplicateLine': lines.splice(i, 0, lines[i]); break;
    case 'value': {
      const [k] = lines[i].split('::');
      lines[i] = `${k}::${r.pick(hostileNumbers)}`;
      break;
    }
    case 'key': {
      const parts = lines[i].split('::');
      parts[0] = r.pick(['SMS', 'sms', 'L1', 'l1', 'shmem', 'warp_size', 'l2', 'dram_gbps', 'fp32_gflops', 'dispatch_us', 'workgroup_storage', 'name', 'bogus', '', '__proto__', 'constructor', 'toString']);
      lines[i] = parts.join('::');
      break;
    }
    case 'separator': lines[i] = r.pick([lines[i].replace('::', ':'), lines[i].replace('::', '::::'), `${lines[i]}::x`, lines[i].replace('::', ' :: '), `# ${lines[i]}`]); break;
    case 'noise': lines.splice(i, 0, r.pick(['\r', '\ufeff', 'x'.repeat(100_000), '::', '#', '\u0000\u0000', 'name::', 'a::b::c', '\t\t'])); break;
  }
  return enc(lines.join(r.bool(0.1) ? '\r\n' : '\n'));
}

export const jsonOps = ['deleteKey', 'setValue', 'id', 'edges', 'shape', 'duplicate', 'deepNest', 'reorder'] as const;
export type JsonOp = (typeof jsonOps)[number];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function hostileJsonValue(r: Rng): Json {
  return r.pick<() => Json>([
    () => null, () => -1, () => 0, () => 1.5, () => 1e308, () => -1e308, () => 2 ** 53 + 2, () => 'x', () => '',
    () => [], () => ({}), () => true, () => r.pick(interestingInts), () => [r.pick(interestingInts)], () => [[1]],
    () => new Array(1000).fill(0), () => ({ __proto__: 1 } as unknown as Json),
  ])();
}

/** Every container (object or array) in the tree with its keys, for picking a place to mutate. */
function containers(root: Json): (Json[] | { [k: string]: Json })[] {
  const out: (Json[] | { [k: string]: Json })[] = [];
  const stack: Json[] = [root];
  while (stack.length > 0 && out.length < 100_000) {
    const v = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    out.push(v);
    for (const c of Array.isArray(v) ? v : Object.values(v)) stack.push(c);
  }
  return out;
}

function layers(root: Json): { [k: string]: Json }[] {
  return Array.isArray(root) ? root.filter((l): l is { [k: string]: Json } => l !== null && typeof l === 'object' && !Array.isArray(l)) : [];
}

export function mutateJson(input: Uint8Array, op: JsonOp, seed: number): Uint8Array {
  try {
    return mutateJsonTree(input, op, seed);
  } catch (e) {
    // A tree deepened by an earlier deepNest can overflow JSON.stringify: keep the input as it is.
    if (e instanceof RangeError) return input;
    throw e;
  }
}

function mutateJsonTree(input: Uint8Array, op: JsonOp, seed: number): Uint8Array {
  const r = new Rng(seed);
  let root: Json;
  try {
    root = JSON.parse(dec(input)) as Json;
  } catch {
    return input; // already broken by a byte mutation: nothing structured to change
  }
  const ls = layers(root);
  const c = containers(root);
  switch (op) {
    case 'deleteKey': {
      const objs = c.filter((x): x is { [k: string]: Json } => !Array.isArray(x));
      if (objs.length === 0) break;
      const o = r.pick(objs);
      const keys = Object.keys(o);
      if (keys.length) delete o[r.pick(keys)];
      break;
    }
    case 'setValue': {
      if (c.length === 0) break;
      const x = r.pick(c);
      if (Array.isArray(x)) { if (x.length) x[r.int(x.length)] = hostileJsonValue(r); }
      else {
        const keys = Object.keys(x);
        const k = r.bool(0.8) && keys.length ? r.pick(keys) : r.pick(['type', 'strides', 'weights_shape', 'activation', 'sms', 'extra']);
        x[k] = hostileJsonValue(r);
      }
      break;
    }
    case 'id': {
      if (ls.length === 0) break;
      r.pick(ls).id = r.pick([-1, ls.length, 0, 1.5, '0', null, 2 ** 31]);
      break;
    }
    case 'edges': {
      if (ls.length === 0) break;
      const l = r.pick(ls);
      const k = r.pick(['parents', 'children']);
      const v = Array.isArray(l[k]) ? [...(l[k] as Json[])] : [];
      switch (r.int(5)) {
        case 0: v.push(r.pick([-1, ls.length, ls.length + 100, l.id as Json, 0])); break;
        case 1: v.pop(); break;
        case 2: v.push(v[0] ?? 0); break; // duplicate edge
        case 3: l[k] = r.pick([null, 'x', 5] as Json[]); return enc(JSON.stringify(root));
        default: v.reverse(); break;
      }
      l[k] = v;
      break;
    }
    case 'shape': {
      if (ls.length === 0) break;
      const l = r.pick(ls);
      const k = r.pick(['ifms_shape', 'ofms_shape', 'weights_shape']);
      const v = Array.isArray(l[k]) ? [...(l[k] as Json[])] : [1, 1, 1];
      if (v.length && r.bool(0.7)) v[r.int(v.length)] = r.pick([0, -1, 2 ** 31, 2 ** 53, 1e9, 1.5, 46341]);
      else if (r.bool(0.5)) v.pop(); else v.push(1);
      l[k] = v;
      if (r.bool(0.2)) l.type = r.pick(['s', 'dw', 'pw', 'fc', 'avgpool', 'bogus']);
      if (r.bool(0.2)) l.strides = r.pick([0, -1, 2 ** 31, 1.5]);
      break;
    }
    case 'duplicate': {
      if (!Array.isArray(root) || root.length === 0) break;
      root.splice(r.int(root.length + 1), 0, JSON.parse(JSON.stringify(r.pick(root))) as Json);
      break;
    }
    case 'deepNest': {
      // Deep nesting: a stack-depth probe for recursive readers.
      const depth = r.pick([100, 10_000, 100_000]);
      const text = JSON.stringify(root);
      return enc(text.replace(/\]$|\}$/, (m) => `${m === ']' ? ',' : ',"deep":'}${'['.repeat(depth)}${']'.repeat(depth)}${m}`));
    }
    case 'reorder': {
      if (!Array.isArray(root) || root.length < 2) break;
      const i = r.int(root.length), j = r.int(root.length);
      [root[i], root[j]] = [root[j], root[i]];
      break;
    }
  }
  return enc(JSON.stringify(root));
}

export const npyOps = ['descr', 'fortran', 'shape', 'headerLength', 'version', 'dataLength', 'header'] as const;
export type NpyOp = (typeof npyOps)[number];

export function mutateNpy(input: Uint8Array, op: NpyOp, seed: number): Uint8Array {
  const r = new Rng(seed);
  const parts = splitNpy(input);
  if (!parts) return input;
  const { header, data } = parts;
  const field = (name: string, value: string) => header.replace(new RegExp(`'${name}':\\s*(\\([^)]*\\)|'[^']*'|\\w+)`), `'${name}': ${value}`);
  const rebuild = (h: string, d = data) => encodeNpy('', [], d, false, h.trimEnd());
  switch (op) {
    case 'descr': return rebuild(field('descr', `'${r.pick(['<f4', '>f4', '<f8', '<f2', '|u1', '|i1', '<i8', '>i8', '<u8', '|b1', '<c8', '|O', '<U3', 'V4', '<f16', '', 'garbage', '<i4'])}'`));
    case 'fortran': return rebuild(field('fortran_order', r.pick(['True', 'False', '1', "'yes'", 'None'])));
    case 'shape': {
      const d = () => r.pick([0, 1, 2, 3, 48, -1, 2 ** 31, 2 ** 53, 1e9, 46341]);
      const shapes = ['()', '(0,)', `(${d()},)`, `(${d()}, ${d()})`, `(${d()}, ${d()}, ${d()}, ${d()})`, "('a',)", '(1.5,)', '[2, 3]', `(${new Array(64).fill(1).join(', ')})`, '(1, 3, 4, 4)', '(48,)', '(1,'];
      return rebuild(field('shape', r.pick(shapes)));
    }
    case 'headerLength': {
      const b = input.slice();
      const v = r.pick([0, 1, 0xffff, b[8] + 1, b[8] - 1, b.length]);
      b[8] = v & 0xff;
      b[9] = (v >> 8) & 0xff;
      return b;
    }
    case 'version': { const b = input.slice(); b[6] = r.pick([0, 2, 3, 99]); b[7] = r.pick([0, 1]); return b; }
    case 'dataLength': {
      const n = r.pick([0, 1, data.length - 1, data.length + 1, data.length * 2, 3]);
      const d = new Uint8Array(Math.max(0, n));
      d.set(data.subarray(0, Math.min(n, data.length)));
      return rebuild(header, d);
    }
    case 'header': return rebuild(r.pick(["{'descr': '<f4'}", '{}', 'not a dict', "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", `{'descr': '<f4', 'fortran_order': False, 'shape': (${'('.repeat(500)}`, header.replace('{', '{{'), '']));
  }
}
