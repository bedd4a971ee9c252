// The demo page: a photo or the webcam through a built-in model, drawn on a canvas with fps and
// milliseconds per stage. Scriptable for tests:
//   ?model=NAME&image=URL               one run on that image
//   ?model=NAME&camera=1&frames=N       N webcam frames
//   &task=detect|classify|segment|run   (default: the model card's own task)
// When done, <pre id="result"> holds one JSON record per line (the command's schema) and its
// data-state is "done" ("error" with {"error": ...} otherwise).
import { TensorCV } from './tensorcv.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const COLORS = ['#ff3b30', '#34c759', '#0a84ff', '#ffd60a', '#bf5af2', '#64d2ff', '#ff9f0a'];

let cv;
const loaded = new Map();
let stopCamera = null;

async function model(name) {
  if (!loaded.has(name)) {
    $('status').textContent = `loading ${name}…`;
    loaded.set(name, await cv.load(name));
  }
  return loaded.get(name);
}

function show(ms, fps) {
  for (const k of ['capture', 'pixels', 'preprocess', 'inference', 'postprocess', 'total']) {
    $(`ms-${k}`).textContent = `${ms[k].toFixed(2)} ms`;
  }
  $('fps').textContent = fps ? fps.toFixed(1) : '–';
}

// The source, then what the record found: a mask, boxes with labels and keypoints, classes.
function draw(source, width, height, result) {
  const canvas = $('canvas');
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const g = canvas.getContext('2d');
  g.drawImage(source, 0, 0, width, height);
  if (result.mask) {
    const layer = new OffscreenCanvas(width, height);
    layer.getContext('2d').putImageData(result.mask, 0, 0);
    g.globalAlpha = 0.5;
    g.drawImage(layer, 0, 0);
    g.globalAlpha = 1;
  }
  const r = result.record;
  const line = Math.max(2, Math.round(Math.min(width, height) / 160));
  g.font = `${Math.max(12, 6 * line)}px system-ui, sans-serif`;
  g.textBaseline = 'bottom';
  for (const d of r.detections ?? []) {
    const color = COLORS[(d.class ?? 0) % COLORS.length];
    const [x1, y1, x2, y2] = d.box;
    g.strokeStyle = color;
    g.lineWidth = line;
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    let text = `${d.label ?? d.class} ${(d.score * 100).toFixed(0)}%`;
    if (d.classes?.length) text += ` · ${d.classes[0].label ?? d.classes[0].class}`;
    const w = g.measureText(text).width + 2 * line;
    g.fillStyle = color;
    g.fillRect(x1, y1 - 7 * line, w, 7 * line);
    g.fillStyle = '#000';
    g.fillText(text, x1 + line, y1);
    for (const [x, y] of d.keypoints ?? []) {
      g.beginPath();
      g.arc(x, y, 1.5 * line, 0, 2 * Math.PI);
      g.fill();
      g.fillStyle = color;
      g.beginPath();
      g.arc(x, y, line, 0, 2 * Math.PI);
      g.fill();
      g.fillStyle = '#000';
    }
  }
  const classes = r.classes ?? r.segmentation?.classes ?? [];
  classes.slice(0, 5).forEach((c, i) => {
    const text = `${c.label ?? c.class} ${((c.score ?? c.fraction) * 100).toFixed(1)}%`;
    g.fillStyle = 'rgba(0,0,0,.6)';
    g.fillRect(0, i * 8 * line, g.measureText(text).width + 2 * line, 8 * line);
    g.fillStyle = '#fff';
    g.fillText(text, line, (i + 1) * 8 * line - line);
  });
}

function finish(lines) {
  const out = $('result');
  out.textContent = lines.join('\n') + (lines.length ? '\n' : '');
  out.dataset.state = 'done';
}

function fail(err) {
  const out = $('result');
  out.textContent = JSON.stringify({ error: String(err?.message ?? err) }) + '\n';
  out.dataset.state = 'error';
  $('status').textContent = String(err?.message ?? err);
}

async function runImage(url, name) {
  const m = await model($('model').value);
  const img = new Image();
  img.src = url;
  await img.decode();
  const result = await m.run(img, { task: params.get('task') ?? 'run', name });
  draw(img, img.naturalWidth, img.naturalHeight, result);
  show(result.ms);
  $('status').textContent = `${m.name}: ${name}`;
  return result.line;
}

// `frames` webcam frames (or until stopped), each as the camera delivers it.
async function runCamera(frames) {
  const m = await model($('model').value);
  const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  const video = $('video');
  video.srcObject = stream;
  await video.play();
  let stopped = false;
  stopCamera = () => { stopped = true; };
  $('stop').disabled = false;
  const lines = [];
  const start = performance.now();
  try {
    for (let n = 0; !stopped && (!frames || n < frames); n++) {
      if (video.requestVideoFrameCallback) {
        await new Promise((resolve) => video.requestVideoFrameCallback(resolve));
      } else {
        await new Promise((resolve) => requestAnimationFrame(resolve));
      }
      const result = await m.run(video, { task: params.get('task') ?? 'run', name: 'camera' });
      result.record.frame = n;
      lines.push(JSON.stringify(result.record));
      draw(video, video.videoWidth, video.videoHeight, result);
      show(result.ms, (n + 1) / ((performance.now() - start) / 1e3));
      $('status').textContent = `${m.name}: webcam frame ${n + 1}`;
    }
  } finally {
    stream.getTracks().forEach((t) => t.stop());
    $('stop').disabled = true;
    stopCamera = null;
  }
  return lines;
}

async function main() {
  cv = await TensorCV.create();
  $('simd').textContent = `SIMD: ${cv.simd}`;
  const select = $('model');
  for (const name of cv.builtins) select.add(new Option(name, name));
  select.value = params.get('model') ?? 'face';
  if (select.value !== (params.get('model') ?? 'face')) {
    throw new Error(`no built-in model '${params.get('model')}' (built-ins: ${cv.builtins.join(', ')})`);
  }
  $('status').textContent = 'ready: choose a photo or the webcam';
  select.onchange = () => model(select.value).then(() => {
    $('status').textContent = `${select.value} ready`;
  }, fail);
  $('photo').onchange = (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const url = URL.createObjectURL(file);
    runImage(url, file.name).then((line) => finish([line]), fail)
      .finally(() => URL.revokeObjectURL(url));
  };
  $('camera').onclick = () => runCamera(0).then(finish, fail);
  $('stop').onclick = () => stopCamera?.();

  if (params.get('image')) {
    const url = params.get('image');
    finish([await runImage(url, url.split('/').pop())]);
  } else if (params.get('camera')) {
    const frames = Number(params.get('frames') ?? 1);
    if (!Number.isInteger(frames) || frames < 1 || frames > 100000) {
      throw new Error(`frames must be a whole number from 1 to 100000, not '${params.get('frames')}'`);
    }
    finish(await runCamera(frames));
  } else {
    await model(select.value);
    $('status').textContent = `${select.value} ready: choose a photo or the webcam`;
  }
}

main().catch(fail);
