import { fromEnv } from '@aws-sdk/credential-provider-env';
import { fromHttp } from '@aws-sdk/credential-provider-http';
import type { defaultProvider as sdkDefaultProvider } from '@aws-sdk/credential-provider-node';
import { chain, memoize } from '@smithy/core/config';
import type { AwsCredentialIdentity } from '@smithy/types';

/**
 * The credential chain of the Lambda bundles, which stands in for the AWS SDK's default chain
 * (`@aws-sdk/credential-provider-node`, aliased to this module by lib/esbuild.ts). Lambda gives a function its
 * role's credentials in the environment or, where it serves them from a container endpoint instead (as SnapStart
 * does), names that endpoint there. The default chain's other sources (SSO, shared config files, credential
 * processes, web identity tokens, EC2 instance metadata) serve other hosts, and with the STS and SSO clients they
 * bring they weighed about 90 KB of the gateway's bundle. The CLI and the local runtime are not built with that
 * alias: they keep the whole chain.
 */

/** Refreshed this long before they expire, as the SDK's default chain does. */
const REFRESH_BEFORE_MS = 5 * 60_000;

const expires = (c: AwsCredentialIdentity) => c.expiration !== undefined;

export const defaultProvider: typeof sdkDefaultProvider = (init = {}) => memoize(
  chain(
    fromEnv(init),
    // Created when the environment holds none: fromHttp() throws at once, naming what to set, if no endpoint is named.
    () => fromHttp(init)(),
  ),
  (c) => expires(c) && c.expiration!.getTime() - Date.now() < REFRESH_BEFORE_MS,
  expires,
);
