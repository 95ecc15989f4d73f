// Names from the input reach the terminal only through displayLine (src/errors.ts, used by the CLI's reporter):
// a node name holding a newline and an ESC sequence printed three lines with live terminal escapes, and a 5 MB name
// printed a 5 MB line. Now: one line, control characters and bidi controls escaped, invalid UTF-8 (U+FFFD from the
// decoder) and lone surrogates as \u escapes, long names cut in the middle.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel, encodeModel } from '../../converters/onnx/codec.js';
import { exportOnnx } from '../../converters/onnx/export.js';
import { fixtureModels } from '../../fixtures/models.js';
import { writeNpy } from '../../src/npy.js';
import { displayLine, escapeText, maxShownLine, maxShownToken, shortenTokens } from '../../src/errors.js';
import { displayLines } from '../../src/cli/main.js';
import { assertRefused, bin, fcmOpt, ownLines } from './harness.js';
import { decodeUtf8Lossless, encodeUtf8Lossless } from '../../src/text.js';
import { hostileTflite } from './models.js';

const dir = mkdtempSync(join(tmpdir(), 'fcm-hostile-msg-'));
const p = (f: string) => join(dir, f);
const x = p('x.npy');

/** classifier_head with its Clip turned into Cos (no kernel: exit 3 naming the node) called `name`. */
function cosNamed(name: string): Uint8Array {
  const m = decodeModel(exportOnnx(fixtureModels.classifier_head()), 'head.onnx');
  const clip = m.graph!.node.find((n) => n.opType === 'Clip')!;
  clip.opType = 'Cos';
  clip.input = [clip.input[0]];
  clip.name = name;
  return encodeModel(m);
}

before(async () => {
  await writeNpy(x, { data: new Float32Array(3 * 32 * 32).fill(0.5), shape: [1, 3, 32, 32] });
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('displayLine: one line, escapes, nothing raw', () => {
  assert.equal(displayLine('node \'a\nb\x1b[31mRED\x1b[0m\r\t\x00\x7f\x9b\''), 'node \'a\\nb\\x1b[31mRED\\x1b[0m\\r\\t\\x00\\x7f\\x9b\'');
  // Bidi overrides reorder what follows on screen; U+FFFD marks invalid UTF-8; lone surrogates are not text.
  assert.equal(escapeText('a\u202eb\u2066c\u200fd\ufffde\ud800f\udc00g'), 'a\\u202eb\\u2066c\\u200fd\\ufffde\\ud800f\\udc00g');
  // Real text passes unchanged, astral characters included.
  assert.equal(displayLine('conv_1: Größe ✓ 😀 名前'), 'conv_1: Größe ✓ 😀 名前');
  const shown = displayLine(`m.onnx: node '${'x'.repeat(5_000_000)}' is bad`);
  assert.ok(shown.length < maxShownToken + 64, String(shown.length));
  assert.match(shown, /^m\.onnx: node 'x+\.\.\.\[4999\d{3} characters cut\]\.\.\.x+' is bad$/);
  // A surrogate pair is never split by a cut.
  const emoji = shortenTokens('😀'.repeat(1000));
  assert.doesNotMatch(escapeText(emoji), /\\ud[89a-f]/);
  // Many words: the whole line is cut.
  const many = displayLine('word '.repeat(100_000));
  assert.ok(many.length <= maxShownLine + 40, String(many.length));
  assert.match(many, /\.\.\.\[\d+ characters cut\]$/);
  assert.equal(displayLines('error: a\x1b\n(hint)\n'), 'error: a\\x1b\n(hint)\n');
});

test('a node name with a newline and ESC: one stderr line, no raw control character', async () => {
  const m = p('evil.onnx');
  writeFileSync(m, cosNamed('evil\n\x1b[31mRED\x1b[0m\nname'));
  const r = await fcmOpt(['run', m, '--input', x, '--output', p('y.npy')]);
  assertRefused(r, 3, /evil\.onnx: .*Cos.*'evil\\n\\x1b\[31mRED\\x1b\[0m\\nname'/, { absent: [p('y.npy')], dir });
  assert.doesNotMatch(r.err, /\x1b/);
});

test('a 5 MB node name: a short line naming the file and both ends of the name', async () => {
  const m = p('long.onnx');
  writeFileSync(m, cosNamed(`head${'x'.repeat(5 * 2 ** 20)}tail`));
  const r = await fcmOpt(['run', m, '--input', x, '--output', p('y.npy')]);
  assertRefused(r, 3, /long\.onnx: .*Cos.*'headx+\.\.\.\[\d+ characters cut\]\.\.\.x+tail'/, { absent: [p('y.npy')], dir });
  assert.ok(ownLines(r)[0].length < 1000, `a line of ${ownLines(r)[0].length} characters`);
});

test('a node name of invalid UTF-8: its bytes shown as \\x escapes', async () => {
  const bytes = Buffer.from(cosNamed('BAD_NAME_Q'));
  const at = bytes.indexOf('BAD_NAME_Q');
  bytes[at + 1] = 0xff; // not UTF-8 anywhere
  bytes[at + 2] = 0xc3; // a lead byte without its continuation
  const m = p('utf.onnx');
  writeFileSync(m, bytes);
  const r = await fcmOpt(['run', m, '--input', x, '--output', p('y.npy')]);
  assertRefused(r, 3, /utf\.onnx: .*'B\\xff\\xc3_NAME_Q'/, { absent: [p('y.npy')], dir });
});

test('a path argument with control characters is escaped too', async () => {
  const r = await fcmOpt(['plan', p('no\x1b[2Jsuch.onnx'), '--hw', 'h100']);
  assertRefused(r, 2, /no\\x1b\[2Jsuch\.onnx: cannot read \(ENOENT: no such file\)$/);
  assert.doesNotMatch(r.err, /\x1b/);
});

/** bin/fcm-opt.js with stderr written to a file (stderr through a shell redirect, a terminal or a pipe). */
function withStderrFile(args: string[]): { code: number | null; err: string } {
  const errFile = p('stderr.txt');
  const fd = openSync(errFile, 'w');
  try {
    const r = spawnSync(process.execPath, [bin, ...args], { stdio: ['ignore', 'ignore', fd], env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' }, timeout: 20_000 });
    return { code: r.status, err: readFileSync(errFile, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

test("Dawn's native warnings reach stderr only with --verbose", () => {
  const m = p('head.onnx');
  writeFileSync(m, exportOnnx(fixtureModels.classifier_head()));
  const verbose = withStderrFile(['run', m, '--input', x, '--output', p('v.npy'), '--verbose']);
  assert.equal(verbose.code, 0, verbose.err);
  const quiet = withStderrFile(['run', m, '--input', x, '--output', p('q.npy')]);
  assert.equal(quiet.code, 0, quiet.err);
  // Nothing at all on stderr without --verbose: lavapipe's "Warning: max...PerPipelineLayout artificially reduced"
  // lines included, which --verbose lets through on adapters that print them.
  assert.equal(quiet.err, '');
  if (/artificially reduced/.test(verbose.err)) assert.match(verbose.err, /^Warning: /m);
  rmSync(p('q.npy'));
  rmSync(p('v.npy'));
});

test('names differing only in invalid UTF-8 stay distinct, and an export writes their bytes back', async () => {
  // Two node names 'N\xffX_1' and 'N\xfeX_2' (in the file: raw bytes, not UTF-8).
  const m = decodeModel(exportOnnx(fixtureModels.classifier_head()), 'head.onnx');
  const nodes = m.graph!.node;
  nodes[0].name = 'NaaX_1';
  nodes[1].name = 'NaaX_2';
  const bytes = Buffer.from(encodeModel(m));
  for (const [name, b] of [['NaaX_1', 0xff], ['NaaX_2', 0xfe]] as const) {
    const at = bytes.indexOf(name);
    bytes[at + 1] = b;
    bytes[at + 2] = 0x80; // a lone continuation byte
  }
  const back = decodeModel(bytes, 'raw.onnx');
  const [a, b] = [back.graph!.node[0].name!, back.graph!.node[1].name!];
  assert.notEqual(a, b);
  assert.equal(escapeText(a), 'N\\xff\\x80X_1');
  assert.equal(escapeText(b), 'N\\xfe\\x80X_2');
  // Encoded again, the same bytes (before: EF BF BD for each).
  assert.deepEqual(Buffer.from(encodeModel(back)), bytes);
  // Valid UTF-8 is unchanged, astral characters included.
  const text = 'Größe ✓ 😀 名前';
  assert.equal(decodeUtf8Lossless(new TextEncoder().encode(text)), text);
  assert.deepEqual(encodeUtf8Lossless(text), new TextEncoder().encode(text));
  // Overlong forms, surrogates in UTF-8 and truncated sequences are bytes too.
  assert.equal(escapeText(decodeUtf8Lossless(Uint8Array.of(0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82))), '\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82');
});

test('a TFLite tensor name of invalid UTF-8: shown as its bytes', async () => {
  const bytes = Buffer.from(hostileTflite('type-200'));
  const at = bytes.indexOf('pw1\0');
  bytes[at + 1] = 0xff;
  const m = p('tf-utf.tflite');
  writeFileSync(m, bytes);
  const r = await fcmOpt(['plan', m, '--hw', 'h100']);
  assertRefused(r, 3, /tf-utf\.tflite: tensor 7 'p\\xff1' has type 200/);
});
