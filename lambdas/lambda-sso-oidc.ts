/**
 * Stands in for the SSO OIDC client (`@aws-sdk/nested-clients/sso-oidc`) in the Lambda bundles (lib/esbuild.ts
 * ALIAS). The AWS SDK's token providers, which Bedrock's clients chain for bearer tokens, use it only to refresh
 * the token of an SSO session named in a shared config file; a Lambda function has no such file, so that refresh
 * is never reached there, and the client and its models weighed about 20 KB of the gateway's bundle.
 */
function unavailable(): never {
  throw new Error('SSO sign-in is not available in the Lambda bundles');
}

export class SSOOIDCClient {
  constructor() {
    unavailable();
  }
}

export class CreateTokenCommand {
  constructor() {
    unavailable();
  }
}
