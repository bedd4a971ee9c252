// The WASI command under a second runtime, Node's built-in WASI (`node:wasi`, preview 1):
// `detect`, `classify`, `segment` and `run` on a photo, a Y4M and an AVI give the native
// command's JSON records (timings aside). Usage:
//   node web/test/wasi-node.mjs [--wasm target/wasm32-wasip1/release/tensorcv.wasm] [--bin target/debug/tensorcv]
// Run from the repository's root; exit code 0 when every record matches.
import { WASI } from 'node:wasi';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { differences } from './serve.mjs';

const args = process.argv.slice(2);
const opt = (name, fallback) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
const WASM = opt('--wasm', 'target/wasm32-wasip1/release/tensorcv.wasm');
const BIN = opt('--bin', 'target/debug/tensorcv');

const module = await WebAssembly.compile(fs.readFileSync(WASM));

/** `tensorcv ARGS` under node:wasi, the current directory preopened as `.`: its stdout. */
async function wasi(argv) {
  const out = `/tmp/tensorcv-wasi-node-${process.pid}.out`;
  const fd = fs.openSync(out, 'w');
  const w = new WASI({ version: 'preview1', args: ['tensorcv', ...argv], env: {},
    preopens: { '.': process.cwd() }, stdout: fd, returnOnExit: true });
  const code = w.start(await WebAssembly.instantiate(module, w.getImportObject()));
  fs.closeSync(fd);
  const text = fs.readFileSync(out, 'utf8');
  fs.unlinkSync(out);
  if (code !== 0) throw new Error(`tensorcv ${argv.join(' ')}: exit ${code}`);
  return text;
}

const records = (text) => text.trim().split('\n').map((l) => JSON.parse(l));
// float rounding between the SIMD paths (SIMD128 here, SSE/AVX natively): the native parity
// tests' bounds, as web/test/e2e.mjs uses them
const TOL = (at) => (/\.(box|keypoints|region)/.test(at) ? 0.05 : 1e-3);

const CASES = [
  ['detect', '--json', '-m', 'face', 'tests/data/imgproc/astronaut.png'],
  ['classify', '--json', '-m', 'emotion', 'tests/data/imgproc/astronaut.png'],
  ['segment', '--json', '-m', 'selfie', 'tests/data/imgproc/astronaut.png'],
  ['run', '--json', '-m', 'shapes_int8', 'tests/data/models/shapes_3_square.png'],
  ['detect', '--json', '-m', 'face', 'tests/data/capture/pan.y4m'],
  ['detect', '--json', '-m', 'face', 'tests/data/capture/pan.avi'],
];
let failed = 0;
for (const argv of CASES) {
  const got = records(await wasi(argv));
  const want = records(execFileSync(BIN, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
  const problems = differences(got, want, TOL);
  if (problems.length) failed++;
  console.log(`${problems.length ? 'FAIL' : 'ok  '} node:wasi ${argv.join(' ')}: ${got.length} records` +
    problems.slice(0, 5).map((p) => `\n  ${p}`).join(''));
}
process.exit(failed ? 1 : 0);
