import { resolve } from 'node:path';

// Node 20 is supported for local use; the SDK's notice about its future Node 22 requirement is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

/** `npm start`: the gateway on this machine, no AWS account or Docker needed. */
async function main(): Promise<void> {
  // Everything the local gateway creates (its state directory, the store's files, keys, custody events) is its
  // owner's alone: directories 0700, files 0600 (or less).
  process.umask(0o077);
  const dataDir = resolve(process.env.NI_DATA_DIR ?? '.ni-data');
  process.env.NI_DATA_DIR = dataDir;
  const { startLocalGateway } = await import('./gateway');
  const gw = await startLocalGateway({
    port: Number(process.env.PORT ?? 8787),
    host: process.env.HOST ?? '127.0.0.1',
    dataDir,
    devKey: true,
  });
  const { createSignInCode, ensureLocalOperator, signInPath } = await import('./portal-auth');
  const { migrateKeysToAccounts } = await import('../lambdas/store/keys');
  await migrateKeysToAccounts(); // keys from before accounts join the default account's index
  const operator = await ensureLocalOperator();
  const signIn = await createSignInCode(operator.id);
  const lines = [
    `Northern Inference gateway (local) listening on ${gw.url}`,
    `  Portal: ${gw.url}${signInPath(signIn)}`,
    `          (signs ${operator.email} in once; a new link on each start, or \`npx ni accounts invite\`)`,
    `  OpenAI base URL:   ${gw.url}/v1`,
    `  Health:            ${gw.url}/health`,
    `  Model catalog:     ${gw.url}/api/billing/models`,
    '  Providers:',
    ...gw.providers.map((p) => `    ${p.name.padEnd(34)} ${p.simulated ? `SIMULATED by a local stand-in at ${p.endpoint} (responses are not from a real model)` : `REAL: ${p.endpoint}`}`),
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
