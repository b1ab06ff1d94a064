import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { CfnFunction } from 'aws-cdk-lib/aws-lambda';
import { build, stop } from 'esbuild';
import { handlerEntry, HANDLERS } from '../../lib/bundling';
import { esbuildOptionsFor } from '../../lib/esbuild';
import { HandlerFunction } from '../../lib/function';
import { removeAssembly, testApp } from './fixture';

// One real synth: every handler bundled by esbuild (locally, never Docker), then CloudFormation and cdk-nag
// validation. Slow by nature.
jest.setTimeout(120_000);

const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
// Compared by digest: a failing toBe() on half a megabyte of minified code is unreadable.
const digest = (code: Uint8Array) => createHash('sha256').update(code).digest('hex');

describe('full synth with bundling', () => {
  /** handler name → the directory of its staged asset */
  const assets = new Map<string, string>();
  const { app, stack } = testApp({ bundle: true });

  beforeAll(() => {
    const outdir = app.synth().directory;
    for (const h of stack.node.findAll().filter((c): c is HandlerFunction => c instanceof HandlerFunction)) {
      const code = stack.resolve((h.fn.node.defaultChild as CfnFunction).code) as { s3Key: string };
      assets.set(h.name, path.join(outdir, `asset.${code.s3Key.replace(/\.zip$/, '')}`));
    }
  });

  afterAll(async () => {
    await stop();
    removeAssembly(app);
  });

  test('every handler is bundled into a single index.js; the portal\'s pages are built beside theirs', () => {
    expect([...assets.keys()].sort()).toEqual([...HANDLERS].sort());
    for (const [name, dir] of assets) expect([name, fs.readdirSync(dir)]).toEqual([name, name === 'portal-assets' ? ['index.js', 'portal'] : ['index.js']]);
    const portal = path.join(assets.get('portal-assets')!, 'portal');
    const html = fs.readFileSync(path.join(portal, 'index.html'), 'utf8');
    for (const asset of fs.readdirSync(path.join(portal, 'assets')).filter((f) => /\.(js|css)$/.test(f))) expect(html).toContain(`/portal/assets/${asset}`);
  });

  test.each([...HANDLERS])('%s: esbuildOptionsFor() builds the same bytes, and only Node built-ins stay external', async (name) => {
    const result = await build({ ...esbuildOptionsFor(handlerEntry(name)), write: false, outfile: 'index.js', metafile: true });
    expect(digest(result.outputFiles[0].contents)).toBe(digest(fs.readFileSync(path.join(assets.get(name)!, 'index.js'))));
    const external = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
    expect(external.filter((p) => !builtins.has(p))).toEqual([]);
    // Lambda's credentials only (lambdas/lambda-credentials.ts): none of the SDK's default chain's other sources,
    // nor the STS, SSO and sign-in clients (lambdas/lambda-sso-oidc.ts stands in for SSO OIDC's).
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((p) => /@aws-sdk\/(credential-provider-(node|ini|sso|process|web-identity|login)|nested-clients)\//.test(p))).toEqual([]);
  });
});
