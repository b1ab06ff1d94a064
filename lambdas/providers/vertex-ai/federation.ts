import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import * as z from 'zod';
import { CLOUD_PLATFORM_SCOPE, postForToken, type IssuedToken } from './auth';

/*
 * Google access tokens without a Google key stored in AWS: workload identity federation from the gateway
 * function's own AWS role. The function signs an AWS STS GetCallerIdentity request with its role's credentials
 * (SigV4) and sends that signed request, serialized, not the credentials, to Google's Security Token Service,
 * which has AWS check it and answers with a short-lived federated token; IAM Credentials' generateAccessToken then
 * exchanges that for a token of the service account the pool's principal may impersonate.
 */

export interface WorkloadIdentity {
  /** The pool provider: `//iam.googleapis.com/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER`. */
  audience: string;
  /** The service account to impersonate; without one the federated token is used as it is (roles granted to the principal set). */
  serviceAccount?: string;
  /** Google's STS (`https://sts.googleapis.com`) and IAM Credentials (`https://iamcredentials.googleapis.com`), or stand-ins. */
  stsEndpoint: string;
  iamCredentialsEndpoint: string;
  /** The region whose AWS STS endpoint Google asks to verify the signed request: the function's own. */
  awsRegion: string;
  awsCredentials: AwsCredentialIdentityProvider;
}

export const AWS_SUBJECT_TOKEN_TYPE = 'urn:ietf:params:aws:token-type:aws4_request';
/** The header that binds a signed GetCallerIdentity request to one pool provider, so it cannot be replayed to another. */
export const TARGET_RESOURCE_HEADER = 'x-goog-cloud-target-resource';

const StsResponse = z.object({ access_token: z.string().min(1), expires_in: z.coerce.number().positive() });
const GenerateAccessTokenResponse = z.object({ accessToken: z.string().min(1), expireTime: z.iso.datetime({ offset: true }) });

const trimSlash = (url: string) => url.replace(/\/+$/, '');

/**
 * The subject token Google's STS takes for an AWS provider: a GetCallerIdentity request of the function's region,
 * signed at `date` with its credentials (the target-resource header included in the signature), serialized as
 * URL-encoded JSON `{url, method, headers: [{key, value}]}`.
 */
export async function awsSubjectToken(wi: WorkloadIdentity, date: Date): Promise<string> {
  const hostname = `sts.${wi.awsRegion}.amazonaws.com`;
  const query = { Action: 'GetCallerIdentity', Version: '2011-06-15' };
  const signer = new SignatureV4({ service: 'sts', region: wi.awsRegion, credentials: wi.awsCredentials, sha256: Sha256, applyChecksum: false });
  const signed = await signer.sign({
    method: 'POST', protocol: 'https:', hostname, path: '/', query,
    headers: { host: hostname, [TARGET_RESOURCE_HEADER]: wi.audience },
  }, { signingDate: date });
  const headers = Object.entries(signed.headers).map(([key, value]) => ({ key, value }));
  return encodeURIComponent(JSON.stringify({ url: `https://${hostname}?${new URLSearchParams(query)}`, method: 'POST', headers }));
}

/** One access token: the federated token from Google's STS, then (with a service account) that account's. */
export async function federatedToken(wi: WorkloadIdentity, now: () => number): Promise<IssuedToken> {
  const issuedAt = now();
  const form = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    audience: wi.audience,
    scope: CLOUD_PLATFORM_SCOPE,
    requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    subject_token_type: AWS_SUBJECT_TOKEN_TYPE,
    subject_token: await awsSubjectToken(wi, new Date(issuedAt)),
  });
  const sts = await postForToken(`${trimSlash(wi.stsEndpoint)}/v1/token`, { 'content-type': 'application/x-www-form-urlencoded' }, form.toString(), StsResponse);
  const federated = { token: sts.access_token, expiresAt: issuedAt + sts.expires_in * 1000 };
  if (!wi.serviceAccount) return federated;
  const url = `${trimSlash(wi.iamCredentialsEndpoint)}/v1/projects/-/serviceAccounts/${encodeURIComponent(wi.serviceAccount)}:generateAccessToken`;
  const sa = await postForToken(url, { 'content-type': 'application/json', authorization: `Bearer ${federated.token}` },
    JSON.stringify({ scope: [CLOUD_PLATFORM_SCOPE], lifetime: '3600s' }), GenerateAccessTokenResponse);
  return { token: sa.accessToken, expiresAt: Date.parse(sa.expireTime) };
}
