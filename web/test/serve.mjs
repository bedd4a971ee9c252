// Support for the browser tests and the speed comparison: a static file server (the built site
// at `/`, and extra folders under their own prefixes: the repository's test photos at `/data/`,
// say; the site itself needs no server of ours), headless Chromium, and comparing records.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.onnx': 'application/octet-stream',
  '.toml': 'text/plain; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

/** Serve `mounts` (`{'/': dir, '/data/': dir2}`) on 127.0.0.1; resolves to the base URL. */
export function serve(mounts) {
  const entries = Object.entries(mounts).sort((a, b) => b[0].length - a[0].length);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    let pathname = decodeURIComponent(url.pathname);
    if (pathname.endsWith('/')) pathname += 'index.html';
    const mount = entries.find(([prefix]) => pathname.startsWith(prefix));
    if (!mount) return void res.writeHead(404).end();
    const root = path.resolve(mount[1]);
    const file = path.resolve(root, '.' + pathname.slice(mount[0].length - 1));
    if (!file.startsWith(root + path.sep) && file !== root) return void res.writeHead(403).end();
    fs.readFile(file, (err, body) => {
      if (err) return void res.writeHead(404).end();
      res.writeHead(200, {
        'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
        'cache-control': 'no-store',
        // cross-origin isolation: onnxruntime-web's threads need SharedArrayBuffer (we run
        // both at one thread; isolated or not, both pages are served alike)
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
      res.end(body);
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve({ url: `http://127.0.0.1:${server.address().port}`, close: () => server.close() });
    });
  });
}

/** Headless Chromium (Debian's), started as the project's tests start it. */
export async function launch(extraArgs = []) {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ...extraArgs,
    ],
  });
}

// What the two records may differ in: the source's name, the frame counter, the clocks, and the
// mask file the command writes only with --save.
const IGNORED = new Set(['source', 'frame', 'timings_ms', 'timestamp_ms', 'mask']);

/** Differences between records `a` (browser) and `b` (native), numbers within `tol(path)`. */
export function differences(a, b, tol, at = '') {
  if (typeof a === 'number' && typeof b === 'number') {
    return Math.abs(a - b) <= tol(at, b) ? [] : [`${at}: ${a} vs ${b}`];
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return [`${at}: ${a.length} items vs ${b.length}`];
    return a.flatMap((v, i) => differences(v, b[i], tol, `${at}[${i}]`));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)].filter((k) => !IGNORED.has(k)));
    return [...keys].flatMap((k) =>
      k in a && k in b ? differences(a[k], b[k], tol, `${at}.${k}`) : [`${at}.${k}: only in one`]);
  }
  return a === b ? [] : [`${at}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}
