// The import structure of the project's own files: no import cycles, and every import runs downward through the
// layers below. Static imports, `export ... from`, `import type`, `import('...')` types and dynamic `import('...')`
// calls all count (a type-only import is still a dependency). Run: npx tsx --test test/layers.test.ts
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

// ---- the layer table ----------------------------------------------------------------------------------------
// A file's layer is that of the longest matching entry (a file, or a folder ending in '/'). A file may import
// files of its own layer or of lower ones, never of a higher one. Every scanned file must match an entry.
const layers: { rank: number; name: string; paths: string[] }[] = [
  // Plain data and helpers every layer may use. src/planner/dag.ts is FusePlanner's layer DAG (model_dag.json):
  // types only, the second IR, which the formats write and the planner reads.
  { rank: 0, name: 'core', paths: ['src/errors.ts', 'src/input-file.ts', 'src/onnxruntime.ts', 'src/progress.ts', 'src/graph/ir.ts', 'src/graph/util.ts', 'src/planner/dag.ts'] },
  { rank: 1, name: 'formats', paths: ['converters/'] },
  // Graph passes, loading (import + prepare), and the integer reference semantics the int8 kernels share.
  { rank: 2, name: 'graph passes', paths: ['src/graph/', 'src/quant/'] },
  { rank: 3, name: 'planner', paths: ['src/planner/'] },
  { rank: 4, name: 'rewrite, export', paths: ['src/rewrite/', 'src/export/', 'src/npy.ts', 'src/npz.ts'] },
  { rank: 5, name: 'kernels', paths: ['kernels/'] },
  { rank: 6, name: 'runtime', paths: ['src/runtime/'] },
  { rank: 7, name: 'pipeline/session', paths: ['src/pipeline/'] },
  // The shipped check and bench commands' libraries (accuracy and latency), then what builds on them.
  { rank: 8, name: 'check, bench', paths: ['src/check/', 'src/bench/'] },
  { rank: 9, name: 'tune, report', paths: ['src/tune/', 'src/report/'] },
  { rank: 10, name: 'cli, library API', paths: ['src/cli/', 'src/index.ts'] },
  // Not shipped: device scripts, the fuzzer, fixture builders and tests import from the product, never the reverse.
  { rank: 11, name: 'tools', paths: ['bench/', 'src/fuzz/', 'fixtures/', 'test/'] },
];

// ---- known violations -----------------------------------------------------------------------------------------
// Imports that break the rules, each excluded from both checks with the reason. An entry whose import no longer
// exists fails the test, so the list only shrinks. Keep it empty.
const allowed: { from: string; to: string; why: string }[] = [];

const scanned = ['src', 'kernels', 'converters', 'fixtures', 'bench'];

// ---- scanner ------------------------------------------------------------------------------------------------

function repoRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(d, 'package.json'))) {
    const up = dirname(d);
    if (up === d) throw new Error('layers test: no package.json above the test file');
    d = up;
  }
  return d;
}

const toPosix = (p: string) => p.split(sep).join('/');

function listTs(root: string, dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir))) {
    const rel = `${dir}/${e}`;
    if (statSync(join(root, rel)).isDirectory()) {
      if (e !== 'node_modules') out.push(...listTs(root, rel));
    } else if (e.endsWith('.ts') && !e.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** The target of an `import(expr)` whose name is computed: a dependency the checks cannot see, so a violation. */
const computed = '(computed import)';

/** Every module specifier a file names: static imports and re-exports, `import('x')` calls and types. */
function specifiers(text: string, fileName: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: string[] = [];
  const visit = (n: ts.Node): void => {
    if ((ts.isImportDeclaration(n) || ts.isExportDeclaration(n)) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      found.push(n.moduleSpecifier.text);
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const a = n.arguments[0];
      if (a && ts.isStringLiteralLike(a)) found.push(a.text);
      else if (a) found.push(computed);
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      found.push(n.argument.literal.text);
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      found.push(n.moduleReference.expression.text);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return found;
}

/** A relative specifier as the repository path it loads (`.js` names its `.ts` source); undefined for packages. */
function resolveSpecifier(root: string, from: string, spec: string): string | undefined {
  if (spec === computed) return computed;
  if (!spec.startsWith('.')) return undefined;
  const abs = resolve(root, dirname(from), spec);
  const candidates = [abs.replace(/\.js$/, '.ts'), abs, `${abs}.ts`, join(abs, 'index.ts')];
  const hit = candidates.find((c) => existsSync(c) && statSync(c).isFile());
  if (!hit) throw new Error(`${from}: cannot resolve '${spec}'`);
  return toPosix(relative(root, hit));
}

type Edges = Map<string, Set<string>>;

function importGraph(root: string): Edges {
  const edges: Edges = new Map();
  for (const file of scanned.flatMap((d) => listTs(root, d)).sort()) {
    const to = new Set<string>();
    for (const s of specifiers(readFileSync(join(root, file), 'utf8'), file)) {
      const r = resolveSpecifier(root, file, s);
      if (r !== undefined && r !== file) to.add(r);
    }
    edges.set(file, to);
  }
  return edges;
}

// ---- checks -------------------------------------------------------------------------------------------------

function layerOf(file: string): { rank: number; name: string } | undefined {
  let best: { rank: number; name: string; len: number } | undefined;
  for (const l of layers) {
    for (const p of l.paths) {
      const hit = p.endsWith('/') ? file.startsWith(p) : file === p;
      if (hit && (!best || p.length > best.len)) best = { rank: l.rank, name: l.name, len: p.length };
    }
  }
  return best;
}

/** Imports from a lower layer to a higher one, as readable lines. */
function upwardImports(edges: Edges, layer: (f: string) => { rank: number; name: string } | undefined): string[] {
  const bad: string[] = [];
  for (const [from, tos] of edges) {
    const lf = layer(from);
    if (!lf) { bad.push(`${from}: in no layer of the table`); continue; }
    for (const to of tos) {
      const lt = layer(to);
      if (to === computed) bad.push(`${from} -> ${computed}: name the module so that its layer can be checked`);
      else if (!lt) bad.push(`${from} -> ${to}: '${to}' is in no layer of the table`);
      else if (lt.rank > lf.rank) bad.push(`${from} (${lf.name}) -> ${to} (${lt.name})`);
    }
  }
  return bad;
}

/** One cycle per strongly connected component of more than one file (Tarjan), each as `a -> b -> ... -> a`. */
function findCycles(edges: Edges): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let next = 0;
  const strong = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) { strong(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const c: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); c.push(w); } while (w !== v);
      if (c.length > 1) components.push(c.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) strong(v);
  // A concrete cycle through the component's first file: breadth-first back to it, inside the component.
  return components.map((c) => {
    const inside = new Set(c);
    const start = c[0];
    const prev = new Map<string, string>();
    const queue = [start];
    let end: string | undefined;
    while (queue.length && end === undefined) {
      const v = queue.shift()!;
      for (const w of [...(edges.get(v) ?? [])].sort()) {
        if (!inside.has(w)) continue;
        if (w === start) { end = v; break; }
        if (!prev.has(w)) { prev.set(w, v); queue.push(w); }
      }
    }
    const path = [start];
    for (let v = end!; v !== start; v = prev.get(v)!) path.splice(1, 0, v);
    return [...path, start];
  });
}

// ---- tests --------------------------------------------------------------------------------------------------

const root = repoRoot();
const graph = importGraph(root);
const allowedKey = new Set(allowed.map((a) => `${a.from} -> ${a.to}`));
const checked: Edges = new Map([...graph].map(([f, tos]) => [f, new Set([...tos].filter((t) => !allowedKey.has(`${f} -> ${t}`)))]));

test('the scanner finds the project files and their imports', () => {
  assert.ok(graph.size > 100, `only ${graph.size} files scanned`);
  assert.ok(graph.get('kernels/depthwise.ts')?.has('kernels/program.ts'), 'kernels/depthwise.ts -> kernels/program.ts not found');
  assert.deepEqual(
    specifiers("import a from './a.js';\nimport type { B } from '../b.js';\nexport { c } from './c.js';\n" +
      "const d = await import('./d.js');\ntype E = import('./e.js').E;\nimport 'node:fs';", 'x.ts'),
    ['./a.js', '../b.js', './c.js', './d.js', './e.js', 'node:fs'],
  );
});

test('the checks find a cycle and an upward import in a small graph', () => {
  const g: Edges = new Map([['a', new Set(['b'])], ['b', new Set(['c'])], ['c', new Set(['a', 'd'])], ['d', new Set<string>()]]);
  assert.deepEqual(findCycles(g), [['a', 'b', 'c', 'a']]);
  const rank: Record<string, number> = { a: 1, b: 1, c: 0, d: 0 };
  assert.deepEqual(upwardImports(g, (f) => ({ rank: rank[f], name: `L${rank[f]}` })), ['c (L0) -> a (L1)']);
});

test('no import cycles among the project files', () => {
  const cycles = findCycles(checked);
  assert.deepEqual(cycles.map((c) => c.join(' -> ')), [], `import cycles:\n${cycles.map((c) => '  ' + c.join(' -> ')).join('\n')}`);
});

test('imports run downward through the layers', () => {
  const bad = upwardImports(checked, layerOf);
  assert.deepEqual(bad, [], `imports from a lower layer to a higher one:\n${bad.map((b) => '  ' + b).join('\n')}`);
});

test('every allowed violation still exists (remove the entry once it is fixed)', () => {
  const gone = allowed.filter((a) => !graph.get(a.from)?.has(a.to)).map((a) => `${a.from} -> ${a.to} (${a.why})`);
  assert.deepEqual(gone, [], `allow-list entries no longer in the code:\n${gone.join('\n')}`);
});
