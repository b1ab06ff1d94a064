import { GatewayError } from '../core/errors';
import { configuredAuthenticator, type PortalAuthenticator } from '../portal/auth';
import { createPortalApi } from '../portal/api';
import { PORTAL_HEADERS } from '../portal/headers';
import { httpHandler } from './middleware';

/** The portal's JSON API (/api/portal/…) over an authenticator: no CORS headers, errors with the portal's headers. */
export const portalHandler = (auth: PortalAuthenticator | null) => httpHandler(
  auth ? createPortalApi(auth) : async () => { throw new GatewayError(503, 'The portal has no user pool configured.', 'server_error', 'portal_not_configured'); },
  { cors: false, errorHeaders: { ...PORTAL_HEADERS, 'cache-control': 'no-store' } },
);

/** In AWS: signed in through the stack's Cognito user pool. */
export const handler = portalHandler(configuredAuthenticator());
