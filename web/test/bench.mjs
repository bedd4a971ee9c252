// Speed in the browser, side by side: tensorcv-web against onnxruntime-web (its wasm backend,
// SIMD, 1 thread; vendored from node_modules, served with the page, never fetched) on the same
// ONNX files, in the same headless Chromium, interleaved round by round. README "WebAssembly".
//
//   web/build.sh && (cd web && npm ci) && node web/test/bench.mjs [--rounds 5] [--runs 20]
//
// Models: the zoo's face and selfie (the files compiled into tensorcv-web), and MobileNetV2 from
// tools/.cache/mobilenet_v2.onnx (`python3 tools/bench_zoo.py --export-only` writes it).
// Per model and engine, medians over every round:
//  - inference: tensorcv's own inference stage (the record's timings_ms.inference, timed in the
//    worker around the model alone) / ort's `session.run` on a ready tensor;
//  - frame: a 640×480 ImageData in, the answer out, as a page calls it: tensorcv's `run`
//    (transfer to its worker, preprocessing, inference, decoding boxes/masks/classes, the JSON
//    record) / ort: the same resize and normalisation done in JS (canvas drawImage, a float loop;
//    what an ort-web page does), `session.run`, and no decoding at all.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, launch } from './serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const ROUNDS = opt('--rounds', 5);
const RUNS = opt('--runs', 20);

const MOBILENET_CARD = `
[model]
name = "mobilenet_v2"
task = "classification"
[input]
channels = "rgb"
range = "[-1,1]"
interpolation = "linear"
fit = "stretch"
`;
const MODELS = [
  { name: 'face', file: '/models/face_detection_short_range.onnx', builtin: 'face',
    size: 128, range: [-1, 1] },
  { name: 'selfie', file: '/models/selfie_segmentation.onnx', builtin: 'selfie',
    size: 256, range: [0, 1] },
  { name: 'mobilenet_v2', file: '/cache/mobilenet_v2.onnx', card: MOBILENET_CARD,
    size: 224, range: [-1, 1] },
].filter((m) => m.builtin || fs.existsSync(path.join(ROOT, 'tools/.cache/mobilenet_v2.onnx')));

const server = await serve({
  '/': path.join(ROOT, 'target/web'),
  '/ort/': path.join(ROOT, 'web/node_modules/onnxruntime-web/dist'),
  '/models/': path.join(ROOT, 'models'),
  '/cache/': path.join(ROOT, 'tools/.cache'),
});
const browser = await launch();
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && console.log(`console: ${m.text()}`));
  await page.goto(`${server.url}/index.html?model=face`);
  const result = await page.evaluate(async ({ MODELS, ROUNDS, RUNS }) => {
    const { TensorCV } = await import('./tensorcv.js');
    const ort = await import('/ort/ort.wasm.min.mjs');
    ort.env.wasm.wasmPaths = '/ort/';
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.simd = true;
    const cv = await TensorCV.create();

    // a 640×480 frame (a drawn scene: the timings do not depend on what it shows)
    const frameCanvas = new OffscreenCanvas(640, 480);
    const fg = frameCanvas.getContext('2d');
    const grad = fg.createLinearGradient(0, 0, 640, 480);
    grad.addColorStop(0, '#c96'); grad.addColorStop(1, '#369');
    fg.fillStyle = grad; fg.fillRect(0, 0, 640, 480);
    fg.fillStyle = '#eec'; fg.beginPath(); fg.arc(320, 220, 110, 0, 2 * Math.PI); fg.fill();
    const frame = fg.getImageData(0, 0, 640, 480);

    const engines = [];
    for (const m of MODELS) {
      const bytes = new Uint8Array(await (await fetch(m.file)).arrayBuffer());
      const tcv = m.builtin ? await cv.load(m.builtin) : await cv.load(bytes, { card: m.card, name: m.name });
      const session = await ort.InferenceSession.create(bytes, { executionProviders: ['wasm'],
        graphOptimizationLevel: 'all' });
      const input = session.inputNames[0];
      const pre = new OffscreenCanvas(m.size, m.size);
      const pg = pre.getContext('2d', { willReadFrequently: true });
      const data = new Float32Array(m.size * m.size * 3);
      const ortFrame = async (image) => {
        pg.drawImage(await createImageBitmap(image), 0, 0, m.size, m.size);
        const px = pg.getImageData(0, 0, m.size, m.size).data;
        const [lo, hi] = m.range;
        const k = (hi - lo) / 255;
        for (let i = 0, j = 0; i < px.length; i += 4, j += 3) {
          data[j] = px[i] * k + lo; data[j + 1] = px[i + 1] * k + lo; data[j + 2] = px[i + 2] * k + lo;
        }
        // the zoo's and Keras' exports are NHWC
        const t = new ort.Tensor('float32', data, [1, m.size, m.size, 3]);
        return session.run({ [input]: t });
      };
      const ready = new ort.Tensor('float32', new Float32Array(m.size * m.size * 3).fill(0.5), [1, m.size, m.size, 3]);
      // warm both up
      for (let i = 0; i < 3; i++) { await tcv.run(frame); await session.run({ [input]: ready }); await ortFrame(frame); }
      engines.push({ m, tcv, session, input, ready, ortFrame });
    }
    const times = {};
    const add = (k, v) => (times[k] ??= []).push(v);
    for (let round = 0; round < ROUNDS; round++) {
      for (const e of engines) {
        const n = e.m.name;
        for (let i = 0; i < RUNS; i++) {
          const r = await e.tcv.run(frame);
          add(`${n}/tensorcv/inference`, r.ms.inference);
          add(`${n}/tensorcv/frame`, r.ms.total);
        }
        for (let i = 0; i < RUNS; i++) {
          let t = performance.now();
          await e.session.run({ [e.input]: e.ready });
          add(`${n}/ort/inference`, performance.now() - t);
          t = performance.now();
          await e.ortFrame(frame);
          add(`${n}/ort/frame`, performance.now() - t);
        }
      }
    }
    const median = (v) => { const s = [...v].sort((a, b) => a - b); return s[s.length >> 1]; };
    const out = {};
    for (const [k, v] of Object.entries(times)) out[k] = median(v);
    return { medians: out, simd: cv.simd, ua: navigator.userAgent };
  }, { MODELS, ROUNDS, RUNS });

  const m = result.medians;
  console.log(`${result.ua}\ntensorcv-web (${result.simd}) vs onnxruntime-web 1.30.0 (wasm, SIMD, 1 thread); ` +
    `medians of ${ROUNDS} interleaved rounds x ${RUNS} runs; ratio = ort / tensorcv (above 1: tensorcv faster)\n`);
  console.log('| model | inference: tensorcv · ort (ratio) | 640×480 frame: tensorcv · ort (ratio) |');
  console.log('|---|---|---|');
  for (const { name } of MODELS) {
    const row = (what) => {
      const a = m[`${name}/tensorcv/${what}`];
      const b = m[`${name}/ort/${what}`];
      return `${a.toFixed(2)} · ${b.toFixed(2)} ms (${(b / a).toFixed(2)}×)`;
    };
    console.log(`| ${name} | ${row('inference')} | ${row('frame')} |`);
  }
} finally {
  await browser.close();
  server.close();
}
