import { resolve } from 'node:path';

// Node 20 is supported for local use; the SDK's notice about its future Node 22 requirement is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** `npm start`: the gateway on this machine, no AWS account or Docker needed. */
async function main(): Promise<void> {
  const dataDir = resolve(process.env.NI_DATA_DIR ?? '.ni-data');
  process.env.NI_DATA_DIR = dataDir;
  const { startLocalGateway } = await import('./gateway');
  const gw = await startLocalGateway({
    port: Number(process.env.PORT ?? 8787),
    host: process.env.HOST ?? '127.0.0.1',
    dataDir,
    devKey: true,
  });
  const lines = [
    `Northern Inference gateway (local) listening on ${gw.url}`,
    `  OpenAI base URL:   ${gw.url}/v1`,
    `  Health:            ${gw.url}/health`,
    `  Model catalog:     ${gw.url}/api/billing/models`,
    `  Bedrock:           ${gw.bedrock.simulated ? `SIMULATED by the local stand-in at ${gw.bedrock.endpoint} (responses are not from a real model)` : `REAL: ${gw.bedrock.endpoint}`}`,
    ...(['vertex_ai', 'anthropic'] as const).map((name) => {
      const u = gw.upstreams[name];
      const label = `${name === 'vertex_ai' ? 'Vertex AI' : 'Anthropic'}:`.padEnd(19);
      return `  ${label}${u.simulated ? `SIMULATED by the local stand-in at ${u.endpoint} (responses are not from a real model)` : `REAL: ${u.endpoint}`}`;
    }),
    `  DynamoDB (local):  ${gw.dynamo.endpoint} (also in ${dataDir}/dynamodb-endpoint), data in ${dataDir}`,
    `  Custody events:    local EventBridge at ${gw.bus.endpoint} → ledger writer`,
  ];
  if (gw.devKey?.secret) {
    lines.push('', `  Development API key (shown once, store it now): ${gw.devKey.secret}`);
  } else if (gw.devKey) {
    lines.push('', `  Development API key: ${gw.devKey.keyId} (${gw.devKey.source === 'env' ? 'from NI_DEV_API_KEY' : 'created on first start; create more with `npx ni keys create`'})`);
  }
  console.log(lines.join('\n'));
  const stop = () => {
    gw.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err) => {
  console.error(`Failed to start: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
