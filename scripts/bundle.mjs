/**
 * The bundles `npm run build` makes after tsc, each one file (or a few)
 * instead of hundreds of ES modules to resolve and link at every start:
 *
 * - dist/src/vendor/client-node.js: the parts of @kubernetes/client-node that
 *   nodediag uses (src/adapters/client-node-exports.ts; ~1,000 modules, most
 *   of a second of CPU to load as a package; ~0.2 s as one file of all of it,
 *   half that of the parts used). src/adapters/kube.ts loads it where it is,
 *   the package otherwise.
 * - dist/src/bundle/: the CLI (run-cli and its commands) and the Kubernetes
 *   worker with zod and yaml (~170 modules), ~70 ms off every command's
 *   start. src/cli.ts loads it where it is, dist/src/cli/run-cli.js
 *   otherwise. The other dependencies stay packages, loaded when used.
 *
 * Same code, same versions (package-lock.json): only how it is laid out.
 */
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
// tsc has just compiled it: the list kube.ts's types allow.
const { CLIENT_NODE_EXPORTS } = await import(`${root}dist/src/adapters/client-node-exports.js`);
const pkg = JSON.parse(readFileSync(`${root}package.json`, 'utf8'));
const common = {
  bundle: true,
  platform: 'node',
  target: 'node22',
  format: 'esm',
  legalComments: 'linked',
  logLevel: 'warning',
  // Their CommonJS parts (yaml's Node build, client-node's dependencies) call require() for Node's own modules.
  banner: { js: "import { createRequire as __ndCreateRequire } from 'node:module'; const require = __ndCreateRequire(import.meta.url);" },
};

await build({
  ...common,
  stdin: { contents: `export { ${CLIENT_NODE_EXPORTS.join(', ')} } from '@kubernetes/client-node';`, resolveDir: root, loader: 'js' },
  minify: true,
  outfile: `${root}dist/src/vendor/client-node.js`,
});

// Chunk names carry a hash: the last build's must not linger beside this one's.
rmSync(`${root}dist/src/bundle`, { recursive: true, force: true });
await build({
  ...common,
  // The worker sits beside the chunks, where kube-in-worker.ts looks for it (./kube-worker.js);
  // dist/src/bundle is as deep as dist/src/adapters, so kube.ts finds ../vendor from either.
  entryPoints: [`${root}dist/src/cli/run-cli.js`, `${root}dist/src/adapters/kube-worker.js`],
  outdir: `${root}dist/src/bundle`,
  entryNames: '[name]',
  splitting: true,
  // Names kept: a stack trace (never shown to users, but to us) still reads.
  minifyWhitespace: true,
  minifySyntax: true,
  external: Object.keys(pkg.dependencies).filter((name) => name !== 'zod' && name !== 'yaml'),
});
