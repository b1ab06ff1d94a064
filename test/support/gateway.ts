import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import type { KeyOptions } from '../../lambdas/core/keys';
import { startLocalGateway, type LocalGateway, type LocalGatewayOptions } from '../../local/gateway';
import { fetchOpenAI } from './openapi';
import { reloadConfig } from '../../lambdas/config';

/** A local gateway for one test file: in-memory store, the Bedrock stand-in, state files in a temp dir. */
export interface TestGateway extends LocalGateway {
  /** Creates a key in the gateway's store and returns an openai client using it, which validates every answer (fetchOpenAI). */
  client(opts?: Partial<KeyOptions>): Promise<{ openai: OpenAI; secret: string; keyId: string }>;
  stateDir: string;
}

export async function startTestGateway(opts: LocalGatewayOptions = {}): Promise<TestGateway> {
  const stateDir = mkdtempSync(join(tmpdir(), 'ni-test-'));
  process.env.NI_DATA_DIR = stateDir;
  process.env.NI_LOG_LEVEL ??= 'ERROR';
  reloadConfig();
  const gw = await startLocalGateway({ forceStandIn: true, ...opts });
  const { createKey } = await import('../../lambdas/store/keys');
  return {
    ...gw,
    stateDir,
    async client(keyOpts = {}) {
      const { record, secret } = await createKey({ name: 'test', ...keyOpts });
      return { openai: new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: secret, maxRetries: 0, fetch: fetchOpenAI }), secret, keyId: record.id };
    },
    /** Lets answered requests finish recording first, so none is cut off by the store closing under it. */
    async close() {
      await gw.flush();
      await gw.close();
      rmSync(stateDir, { recursive: true, force: true });
    },
  };
}
