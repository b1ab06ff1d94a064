import { composeGateway } from '../compose';
import { streamingHandler } from './middleware';

// Built at init: a broken catalog (NI_CATALOG_FILE) or configuration fails the function's init with a message
// naming it, rather than every request with a 500.
const gateway = composeGateway();

/** `/v1/*` behind API Gateway with response streaming. */
export const handler = streamingHandler((req, sink) => gateway.handleV1(req, sink));
