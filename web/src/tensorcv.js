// tensorcv in the browser: the page's API. Models run in a Web Worker (worker.js), so a page
// that calls these stays responsive.
//
//   import { TensorCV } from './tensorcv.js';
//   const cv = await TensorCV.create();
//   const face = await cv.load('face');                  // a built-in, or
//   // await cv.load(bytes, { card: tomlText, name: 'my-model' });
//   const { record, mask } = await face.detect(imgElement);  // or classify / segment / run
//
// A record is the `tensorcv` command's JSON record (`tensorcv detect --json`), parsed; `line`
// is its JSON text; `mask` an ImageData of the segmentation's classes (segmentation only).
// Sources: ImageData, <img>, <video> (its current frame), <canvas>, ImageBitmap, VideoFrame.

export class TensorCV {
  #worker;
  #next = 1;
  #waiting = new Map();

  constructor(worker) {
    this.#worker = worker;
    worker.onmessage = (e) => {
      const { id, ok, error, ...answer } = e.data;
      const w = this.#waiting.get(id);
      if (!w) return;
      this.#waiting.delete(id);
      ok ? w.resolve(answer) : w.reject(new Error(error));
    };
    worker.onerror = (e) => {
      for (const w of this.#waiting.values()) w.reject(new Error(e.message || 'worker failed'));
      this.#waiting.clear();
    };
  }

  /** Start the worker and its WebAssembly; `builtins` and `simd` say what it has. */
  static async create({ worker = new URL('./worker.js', import.meta.url), wasm } = {}) {
    const cv = new TensorCV(new Worker(worker, { type: 'module' }));
    const info = await cv.call('init', { wasm: wasm?.toString() });
    cv.builtins = info.builtins;
    cv.simd = info.simd;
    return cv;
  }

  call(op, args = {}, transfer = []) {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      this.#worker.postMessage({ id, op, ...args }, transfer);
    });
  }

  /** A built-in model by name, or model bytes (ONNX or TFLite) with `card` (TOML text). */
  async load(model, { card, name } = {}) {
    const key = `m${this.#next}`;
    let info;
    if (typeof model === 'string') {
      info = await this.call('load', { key, name: model });
    } else {
      const bytes = model instanceof ArrayBuffer ? model.slice(0)
        : model.buffer.slice(model.byteOffset, model.byteOffset + model.byteLength);
      info = await this.call('load', { key, name: name ?? 'model', bytes, card }, [bytes]);
    }
    return new LoadedModel(this, key, info);
  }

  terminate() {
    this.#worker.terminate();
  }
}

export class LoadedModel {
  constructor(cv, key, info) {
    this.cv = cv;
    this.key = key;
    this.name = info.name;
    this.task = info.task;
    this.inputSize = info.inputSize;
    this.loadMs = info.loadMs;
  }

  detect(source, options) { return this.run(source, { ...options, task: 'detect' }); }
  classify(source, options) { return this.run(source, { ...options, task: 'classify' }); }
  segment(source, options) { return this.run(source, { ...options, task: 'segment' }); }

  /** Run `task` (default: the card's own) on `source`; `name` goes into the record's `source`. */
  async run(source, { task = 'run', name = '', mask = true } = {}) {
    const t0 = performance.now();
    const args = { key: this.key, task, source: name, mask };
    let transfer = [];
    if (typeof ImageData !== 'undefined' && source instanceof ImageData) {
      args.image = source;
    } else {
      args.bitmap = await createImageBitmap(source, {
        colorSpaceConversion: 'none', premultiplyAlpha: 'none',
      });
      transfer = [args.bitmap];
    }
    const t1 = performance.now();
    const a = await this.cv.call('run', args, transfer);
    const record = JSON.parse(a.line);
    const stages = record.timings_ms ?? {};
    return {
      record,
      line: a.line,
      mask: a.mask ? new ImageData(new Uint8ClampedArray(a.mask), a.width, a.height) : null,
      ms: {
        capture: t1 - t0,
        pixels: a.ms.pixels,
        preprocess: stages.preprocess ?? 0,
        inference: stages.inference ?? 0,
        postprocess: stages.postprocess ?? 0,
        run: a.ms.run,
        total: performance.now() - t0,
      },
    };
  }

  unload() { return this.cv.call('unload', { key: this.key }); }
}
