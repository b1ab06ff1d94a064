import { resetDdb } from '../../lambdas/store/ddb';
import { startEmbeddedDynamo, type EmbeddedDynamo } from '../../local/dynamo';

/**
 * Registers hooks that start an in-memory dynalite with the gateway's tables, point this process's store modules
 * at it (NI_* env and a fresh SDK client), and stop it afterwards; once for the file, or around each test with
 * `perTest`. Hooks run in the order they are registered: call it before hooks that need the store.
 */
export function useEmbeddedDynamo(opts: { perTest?: boolean } = {}): () => EmbeddedDynamo {
  const [before, after] = opts.perTest ? [beforeEach, afterEach] : [beforeAll, afterAll];
  let db: EmbeddedDynamo | undefined;
  before(async () => {
    db = await startEmbeddedDynamo();
    db.applyEnv();
    resetDdb();
  });
  after(async () => {
    resetDdb();
    await db?.close();
    db = undefined;
  });
  return () => {
    if (!db) throw new Error('the embedded DynamoDB runs only inside tests and hooks registered after useEmbeddedDynamo()');
    return db;
  };
}
