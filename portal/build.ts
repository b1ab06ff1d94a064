import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { build } from 'esbuild';
import { BASE_PLACEHOLDER } from '../lambdas/portal/headers';

/*
 * Builds the portal's pages (Preact, uPlot) into `outdir`: index.html and content-hashed assets/. Run on demand by
 * `npm start` (local/build.ts), by the stack's bundling of the portal-assets function (lib/api.ts) and by the
 * tests, so nothing built is committed and `npm ci` needs no extra step.
 *
 * index.html is a template: the handler puts the assets' absolute path in (`%BASE%`), so the page loads under an
 * API stage prefix (/prod/portal/) as under a custom domain (/portal/), with or without a trailing slash.
 */
export async function buildPortal(outdir: string): Promise<void> {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(join(outdir, 'assets'), { recursive: true });
  const result = await build({
    entryPoints: [join(__dirname, 'src', 'main.tsx')],
    outdir: join(outdir, 'assets'),
    entryNames: '[name]-[hash]',
    bundle: true,
    format: 'esm',
    target: ['chrome120', 'firefox120', 'safari17'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    sourcemap: false,
    metafile: true,
    legalComments: 'linked',
    logLevel: 'warning',
  });
  const outputs = Object.keys(result.metafile.outputs).map((p) => basename(p));
  const js = outputs.find((f) => f.endsWith('.js'));
  const css = outputs.find((f) => f.endsWith('.css'));
  if (!js || !css) throw new Error(`portal build produced ${outputs.join(', ')}`);
  writeFileSync(join(outdir, 'index.html'), `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>Northern Inference portal</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${BASE_PLACEHOLDER}/portal/assets/${css}">
<script type="module" src="${BASE_PLACEHOLDER}/portal/assets/${js}"></script>
</head>
<body>
<div id="app"></div>
<noscript>The portal needs JavaScript.</noscript>
</body>
</html>
`);
}

if (require.main === module) {
  buildPortal(process.argv[2] ?? 'portal-dist').catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
