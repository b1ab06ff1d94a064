/** OpenAI's error shape, the only error body the gateway ever returns. */
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'insufficient_quota'
  | 'server_error'
  | 'api_error';

export interface ErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null; [extra: string]: unknown };
}

export class GatewayError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType,
    readonly code: string | null = null,
    readonly param: string | null = null,
    /** Machine-readable extras placed inside `error` (e.g. the list of available models). */
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  toBody(): ErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code, ...this.extra } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new GatewayError(400, message, 'invalid_request_error', code, param);

/** Any thrown value as a GatewayError; unknown failures become an opaque 500 (details go to logs, not clients). */
export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  return new GatewayError(500, 'The gateway failed to process the request.', 'server_error', 'internal_error');
}
