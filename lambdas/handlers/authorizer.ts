import type { APIGatewayAuthorizerResult, APIGatewayRequestAuthorizerEvent } from 'aws-lambda';
import { config } from '../config';
import {
  hashSecret, KeyRecord, keyToPrincipal, parseBearer, stageWildcardArn,
} from '../core/keys';
import { toAuthorizerContext } from '../core/principal';
import { logger } from '../observability';
import { findByHash } from '../store/keys';
import { lambdaHandler } from './middleware';

/**
 * REQUEST authorizer for every authenticated route (identity source: the Authorization header).
 * `Bearer ni_live_…` of a known, unrevoked key → Allow on the whole stage with the key's settings as context;
 * anything else → `Error('Unauthorized')`, which API Gateway answers with 401 (rewritten by a Gateway Response
 * into OpenAI's invalid_api_key error). Store failures throw something else, so they surface as 500, not as
 * an invalid key. Logs carry the key id and the outcome only: never the header, the secret or its hash.
 */

const MAX_CACHED_KEYS = 1_000;

interface Options {
  /** How long a looked-up key is trusted without reading the store again (also bounds revocation). */
  ttlMs?: number;
  now?: () => number;
}

export function createAuthorizer({ ttlMs = config().keyCacheTtlMs, now = Date.now }: Options = {}) {
  // By hash of the secret. Only found keys are kept (revoked ones included): an unknown secret is looked up
  // every time, so a key that has just been created works at once.
  const cache = new Map<string, { record: KeyRecord; expires: number }>();

  async function lookup(hash: string): Promise<KeyRecord | undefined> {
    const hit = cache.get(hash);
    if (hit && hit.expires > now()) return hit.record;
    const record = await findByHash(hash);
    cache.delete(hash);
    if (record && ttlMs > 0) {
      if (cache.size >= MAX_CACHED_KEYS) cache.delete(cache.keys().next().value!); // oldest first
      cache.set(hash, { record, expires: now() + ttlMs });
    }
    return record;
  }

  return async (event: APIGatewayRequestAuthorizerEvent): Promise<APIGatewayAuthorizerResult> => {
    const header = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'authorization')?.[1];
    const secret = parseBearer(header);
    if (!secret) return deny(header === undefined ? 'missing' : 'malformed');
    const record = await lookup(hashSecret(secret));
    if (!record) return deny('unknown');
    if (record.revoked_at !== null) return deny('revoked', record.id);
    logger.debug('API key accepted', { keyId: record.id });
    return {
      principalId: record.id,
      policyDocument: {
        Version: '2012-10-17',
        Statement: [{ Action: 'execute-api:Invoke', Effect: 'Allow', Resource: stageWildcardArn(event.methodArn) }],
      },
      context: toAuthorizerContext(keyToPrincipal(record)),
    };
  };
}

function deny(reason: 'missing' | 'malformed' | 'unknown' | 'revoked', keyId?: string): never {
  logger.info('API key rejected', { reason, ...(keyId ? { keyId } : {}) });
  throw new Error('Unauthorized');
}


export const handler = lambdaHandler(createAuthorizer());
