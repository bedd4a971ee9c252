// The Web Worker that owns tensorcv's WebAssembly: models are loaded and run here, so the page
// stays responsive while a model runs. `tensorcv.js` is its only caller; messages are
// `{id, op, ...}` and every answer is `{id, ok: true, ...}` or `{id, ok: false, error}`.
import init, { WebModel, builtins, simd } from './pkg/tensorcv_web.js';

const models = new Map();
let canvas = null;
let context = null;

// The RGBA bytes of an ImageBitmap (drawn once on an OffscreenCanvas, no scaling, no colour
// management: the bitmap was made with colorSpaceConversion 'none').
function pixels(bitmap) {
  const { width, height } = bitmap;
  if (!canvas || canvas.width !== width || canvas.height !== height) {
    canvas = new OffscreenCanvas(width, height);
    context = canvas.getContext('2d', { willReadFrequently: true, alpha: false });
  }
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context.getImageData(0, 0, width, height);
}

const ops = {
  async init({ wasm }) {
    await init(wasm ? { module_or_path: wasm } : undefined);
    return { builtins: JSON.parse(builtins()), simd: simd() };
  },
  load({ key, name, bytes, card }) {
    const t = performance.now();
    const model = bytes ? WebModel.fromBytes(new Uint8Array(bytes), card ?? undefined, name)
                        : WebModel.builtin(name);
    models.get(key)?.free();
    models.set(key, model);
    return { name: model.name, task: model.task, inputSize: Array.from(model.inputSize),
             loadMs: performance.now() - t };
  },
  run({ key, task, image, bitmap, source, mask }) {
    const model = models.get(key);
    if (!model) throw new Error(`no model '${key}' is loaded`);
    const t0 = performance.now();
    const data = image ?? pixels(bitmap);
    const t1 = performance.now();
    const line = model.run(task, new Uint8Array(data.data.buffer, data.data.byteOffset,
                                                data.data.byteLength),
                           data.width, data.height, source ?? '');
    const t2 = performance.now();
    let maskBytes = null;
    if (mask) {
      const m = model.mask();
      if (m) maskBytes = m.buffer;
    }
    return {
      line, width: data.width, height: data.height, mask: maskBytes,
      ms: { pixels: t1 - t0, run: t2 - t1 },
      transfer: maskBytes ? [maskBytes] : [],
    };
  },
  unload({ key }) {
    models.get(key)?.free();
    models.delete(key);
    return {};
  },
};

self.onmessage = async (e) => {
  const { id, op, ...args } = e.data;
  try {
    if (!ops[op]) throw new Error(`unknown operation '${op}'`);
    const { transfer = [], ...answer } = await ops[op](args);
    self.postMessage({ id, ok: true, ...answer }, transfer);
  } catch (err) {
    self.postMessage({ id, ok: false, error: String(err?.message ?? err) });
  }
};
