import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalog } from '../../lambdas/catalog';
import builtIn from '../../lambdas/catalog.json';
import { bedrockInvokeArns } from '../../lib/bedrock';

const ACCOUNT = '111122223333';
const bedrock = (upstream_id: string, region = 'ca-central-1') => ({ provider: 'bedrock', region, upstream_id });

describe('bedrockInvokeArns', () => {
  test('a plain model id is one foundation model in the route region', () => {
    expect(bedrockInvokeArns([bedrock('meta.llama3-70b-instruct-v1:0')], ACCOUNT)).toEqual([
      'arn:aws:bedrock:ca-central-1::foundation-model/meta.llama3-70b-instruct-v1:0',
    ]);
  });

  test('a geographic inference profile: the profile in our account plus the model in any region', () => {
    expect(bedrockInvokeArns([bedrock('us.anthropic.claude-haiku-4-5-20251001-v1:0')], ACCOUNT)).toEqual([
      'arn:aws:bedrock:*::foundation-model/anthropic.claude-haiku-4-5-20251001-v1:0',
      `arn:aws:bedrock:ca-central-1:${ACCOUNT}:inference-profile/us.anthropic.claude-haiku-4-5-20251001-v1:0`,
    ]);
    expect(bedrockInvokeArns([bedrock('eu.mistral.pixtral-large-2502-v1:0', 'eu-west-1')], ACCOUNT)).toEqual([
      'arn:aws:bedrock:*::foundation-model/mistral.pixtral-large-2502-v1:0',
      `arn:aws:bedrock:eu-west-1:${ACCOUNT}:inference-profile/eu.mistral.pixtral-large-2502-v1:0`,
    ]);
  });

  test('a global profile also needs the region-less foundation-model ARN', () => {
    expect(bedrockInvokeArns([bedrock('global.anthropic.claude-opus-4-6-v1')], ACCOUNT)).toEqual([
      'arn:aws:bedrock:*::foundation-model/anthropic.claude-opus-4-6-v1',
      'arn:aws:bedrock:::foundation-model/anthropic.claude-opus-4-6-v1',
      `arn:aws:bedrock:ca-central-1:${ACCOUNT}:inference-profile/global.anthropic.claude-opus-4-6-v1`,
    ]);
  });

  test('other providers grant nothing; shared models are listed once', () => {
    expect(bedrockInvokeArns([{ provider: 'openai', region: 'us', upstream_id: 'gpt-4.1' }], ACCOUNT)).toEqual([]);
    const twice = bedrockInvokeArns([bedrock('us.anthropic.claude-opus-4-6-v1'), bedrock('global.anthropic.claude-opus-4-6-v1')], ACCOUNT);
    expect(twice.filter((a) => a === 'arn:aws:bedrock:*::foundation-model/anthropic.claude-opus-4-6-v1')).toHaveLength(1);
    expect(twice).toHaveLength(4);
  });

  test('the built-in catalog: one grant set covering every served Bedrock route, no bare wildcard', () => {
    const routes = catalog().models.flatMap((m) => m.served);
    const arns = bedrockInvokeArns(routes, ACCOUNT);
    for (const r of routes.filter((x) => x.provider === 'bedrock')) expect(arns.some((a) => a.endsWith(`/${r.upstream_id}`))).toBe(true);
    expect(arns.every((a) => a.startsWith('arn:aws:bedrock:') && !a.endsWith('*'))).toBe(true);
  });
});

describe('cdk synth with a catalog whose label contradicts its route', () => {
  test('is refused, naming the entry', () => {
    const data = structuredClone(builtIn) as { models: { id: string; routes: { jurisdiction: string }[] }[] };
    data.models.find((m) => m.id === 'anthropic/claude-sonnet-4.5')!.routes[0].jurisdiction = 'CA';
    const file = join(mkdtempSync(join(tmpdir(), 'ni-cat-')), 'catalog.json');
    writeFileSync(file, JSON.stringify(data));
    jest.isolateModules(() => {
      process.env.NI_CATALOG_FILE = file;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { reloadConfig } = require('../../lambdas/config') as typeof import('../../lambdas/config');
      reloadConfig();
      try {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { testApp } = require('./fixture') as typeof import('./fixture');
        expect(() => testApp()).toThrow(/model "anthropic\/claude-sonnet-4.5" route bedrock ca-central-1 us\.anthropic\.claude-sonnet-4-5-20250929-v1:0: prefix "us\." processes data in US, but the catalog says CA/);
      } finally {
        delete process.env.NI_CATALOG_FILE;
        reloadConfig();
      }
    });
  });
});
