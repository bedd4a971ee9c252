// The browser package against the native command, in headless Chromium:
//  - photos: the demo page's `?model=M&image=URL` record equals `tensorcv run --json -m M FILE`
//    (PNG photos: lossless, so both decode the same pixels);
//  - the webcam: Chromium's fake camera plays a Y4M file; `?model=face&camera=1&frames=N` gives
//    N records, each equal (within the colour conversion's tolerance) to the native record of
//    the Y4M frame it shows;
//  - the page stays responsive while a model runs (the work is in a Web Worker).
// Usage: node web/test/e2e.mjs [--bin NATIVE_TENSORCV] [--site target/web] [--screenshot PNG]
// Exit code 0 when every check passes. `.ci/run` runs it after web/build.sh.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve, launch, differences } from './serve.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const BIN = path.resolve(ROOT, opt('--bin', process.env.TENSORCV_BIN ?? 'target/debug/tensorcv'));
const SITE = path.resolve(ROOT, opt('--site', 'target/web'));
const SCREENSHOT = opt('--screenshot');
const Y4M = path.join(ROOT, 'tests/data/capture/pan.y4m');

// Same pixels: what differs is float rounding between the SIMD paths (SSE/AVX on the host,
// SIMD128 here). The native parity tests' bounds: boxes and keypoints within 0.05 px (their
// records are rounded to 0.01), scores and shares within 1e-3.
const SAME_PIXELS = (at) => (/\.(box|keypoints|region)/.test(at) ? 0.05 : 1e-3);
// The camera: Chromium converts the Y4M's I420 to RGB with its own (libyuv) arithmetic, the
// command with its own; a level or two per channel moves a face box by a fraction of a pixel.
const CAMERA = (at) => (/\.(box|keypoints|region)/.test(at) ? 2.0 : 0.03);

function native(args) {
  const out = execFileSync(BIN, ['run', '--json', ...args], { cwd: ROOT, encoding: 'utf8' });
  return out.trim().split('\n').map((l) => JSON.parse(l));
}

async function pageRecords(page, url) {
  await page.goto(url);
  const result = page.locator('#result[data-state]');
  await result.waitFor({ timeout: 120_000 });
  const text = await page.locator('#result').textContent();
  const state = await page.locator('#result').getAttribute('data-state');
  const records = text.trim().split('\n').map((l) => JSON.parse(l));
  if (state !== 'done') throw new Error(`${url}: ${text}`);
  return records;
}

let failed = 0;
function check(name, problems) {
  if (problems.length) {
    failed++;
    console.log(`FAIL ${name}\n  ${problems.slice(0, 12).join('\n  ')}`);
  } else {
    console.log(`ok   ${name}`);
  }
}

const PHOTOS = [
  ['face', 'imgproc/astronaut.png'],
  ['face', 'imgproc/coffee.png'],
  ['selfie', 'imgproc/astronaut.png'],
  ['emotion', 'imgproc/astronaut.png'],
  ['shapes', 'models/shapes_3_square.png'],
];

const server = await serve({ '/': SITE, '/data/': path.join(ROOT, 'tests/data') });
const browser = await launch([
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  `--use-file-for-fake-video-capture=${Y4M}`,
  '--autoplay-policy=no-user-gesture-required',
]);
try {
  const page = await browser.newPage();
  page.on('console', (m) => m.type() === 'error' && console.log(`  console: ${m.text()}`));
  page.on('pageerror', (e) => console.log(`  page error: ${e.message}`));

  for (const [model, photo] of PHOTOS) {
    const web = await pageRecords(page, `${server.url}/?model=${model}&image=/data/${photo}`);
    const cli = native(['-m', model, `tests/data/${photo}`]);
    check(`photo: ${model} on ${photo} (${JSON.stringify(web[0]).length} bytes of record)`, [
      ...(web.length === 1 ? [] : [`${web.length} records`]),
      ...differences(web[0], cli[0], SAME_PIXELS),
    ]);
  }
  // a picture of the page for the README (the last photo case is on screen: take the first)
  if (SCREENSHOT) {
    await pageRecords(page, `${server.url}/?model=face&image=/data/imgproc/astronaut.png`);
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
  }

  // the webcam: every browser record is one of the Y4M's frames as the command sees it
  const frames = 8;
  const web = await pageRecords(page, `${server.url}/?model=face&camera=1&frames=${frames}`);
  const cli = native(['-m', 'face', Y4M]);
  const problems = web.length === frames ? [] : [`${web.length} records, not ${frames}`];
  const matched = new Set();
  web.forEach((w, i) => {
    const best = cli
      .map((c) => ({ c, d: differences(w, c, CAMERA) }))
      .sort((x, y) => x.d.length - y.d.length)[0];
    if (best.d.length) problems.push(`camera frame ${i}: nearest native frame ${best.c.frame}: ${best.d.join('; ')}`);
    else matched.add(best.c.frame);
    if (!(w.detections?.length > 0)) problems.push(`camera frame ${i}: no face`);
  });
  check(`camera: face on ${frames} frames of the fake webcam (${path.basename(Y4M)}; matched native frames ${[...matched].join(',')})`, problems);

  // responsive: while a model runs in the worker, the page's own timers keep firing
  await page.goto(`${server.url}/?model=selfie`);
  await page.waitForFunction(() => /ready/.test(document.getElementById('status').textContent), null, { timeout: 120_000 });
  const gap = await page.evaluate(async () => {
    const { TensorCV } = await import('./tensorcv.js');
    const cv = await TensorCV.create();
    const m = await cv.load('selfie');
    const image = new ImageData(1280, 720);
    let last = performance.now();
    let worst = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worst = Math.max(worst, now - last);
      last = now;
    }, 5);
    const t = performance.now();
    for (let i = 0; i < 5; i++) await m.segment(image);
    const busy = performance.now() - t;
    clearInterval(timer);
    cv.terminate();
    return { worst, busy };
  });
  check(`responsive: 5 selfie runs took ${gap.busy.toFixed(0)} ms, the page's longest pause ${gap.worst.toFixed(1)} ms`,
    gap.worst < Math.max(100, gap.busy / 5) ? [] : ['the page was blocked while the model ran']);
} finally {
  await browser.close();
  server.close();
}
process.exit(failed ? 1 : 0);
