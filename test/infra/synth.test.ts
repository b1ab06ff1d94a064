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

  test('every handler is bundled into a single index.js', () => {
    expect([...assets.keys()].sort()).toEqual([...HANDLERS].sort());
    for (const dir of assets.values()) expect(fs.readdirSync(dir)).toEqual(['index.js']);
  });

  test.each([...HANDLERS])('%s: esbuildOptionsFor() builds the same bytes, and only Node built-ins stay external', async (name) => {
    const result = await build({ ...esbuildOptionsFor(handlerEntry(name)), write: false, outfile: 'index.js', metafile: true });
    expect(digest(result.outputFiles[0].contents)).toBe(digest(fs.readFileSync(path.join(assets.get(name)!, 'index.js'))));
    const external = Object.values(result.metafile.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path));
    expect(external.filter((p) => !builtins.has(p))).toEqual([]);
  });
});
