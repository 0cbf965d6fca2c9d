// Bundles src/main.js (with livekit-client) into dist/playground.js. The Rust binary embeds it
// with index.html, so the bundle is checked in and `cargo build` never needs npm.
import { build } from 'esbuild';
import { mkdir } from 'node:fs/promises';

await mkdir('dist', { recursive: true });
await build({
  entryPoints: ['src/main.js'],
  outfile: 'dist/playground.js',
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['es2020'],
  legalComments: 'eof',
  logLevel: 'info',
});
