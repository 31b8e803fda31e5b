/**
 * Bundles @kubernetes/client-node into one file, dist/src/vendor/client-node.js
 * (part of `npm run build`). Loaded as a package it is ~1,000 files of ESM
 * to resolve and link, most of a second of CPU at every start of the CLI;
 * as one file, a fraction of that. The adapter (src/adapters/kube.ts) loads
 * the bundle when it is there and the package otherwise: the code is the
 * same library, at the version package-lock.json pins.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
await build({
  stdin: { contents: "export * from '@kubernetes/client-node';", resolveDir: root, loader: 'js' },
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  minify: true,
  legalComments: 'linked',
  // Its CommonJS dependencies call require() for Node's own modules.
  banner: { js: "import { createRequire as __ndCreateRequire } from 'node:module'; const require = __ndCreateRequire(import.meta.url);" },
  outfile: `${root}dist/src/vendor/client-node.js`,
  logLevel: 'warning',
});
