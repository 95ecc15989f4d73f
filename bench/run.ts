// `npm run bench`: `fcm-opt bench` on every bundled model (fixtures/bundled/*.onnx), tables on stdout.
// Extra arguments go to each bench: npm run bench -- --hw lavapipe --runs 10 --warmup 2 [--json]
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../src/cli/main.js';

const dir = join(process.cwd(), 'fixtures', 'bundled');
const models = readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort().map((f) => join('fixtures', 'bundled', f));
if (models.length === 0) {
  process.stderr.write(`no .onnx models in ${dir}\n`);
  process.exitCode = 2;
} else {
  let code = 0;
  for (const m of models) {
    const rc = await main(['node', 'fcm-opt', 'bench', m, ...process.argv.slice(2)]);
    if (rc !== 0) code = rc;
  }
  process.exitCode = code;
}
