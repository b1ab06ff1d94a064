import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { KEY_SCHEMA, type TableName } from '../lambdas/store/tables';

/** Attribute DynamoDB's TTL deletes usage items by (epoch seconds): reservations and old per-request records. */
export const USAGE_TTL_ATTRIBUTE = 'expires_at';

/**
 * The gateway's tables, all with the key schema the store modules use. On-demand, PITR, deletion-protected
 * and retained: keys and the ledger are irreplaceable, and usage is the billing record.
 */
export class Data extends Construct {
  readonly tables: Record<TableName, dynamodb.Table>;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const table = (logicalId: string, extra: Partial<dynamodb.TableProps> = {}) =>
      new dynamodb.Table(this, logicalId, {
        partitionKey: { name: KEY_SCHEMA.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: { name: KEY_SCHEMA.sortKey, type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        deletionProtection: true,
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        removalPolicy: RemovalPolicy.RETAIN,
        ...extra,
      });
    this.tables = {
      keys: table('KeysTable'),
      usage: table('UsageTable', { timeToLiveAttribute: USAGE_TTL_ATTRIBUTE }),
      ledger: table('LedgerTable'),
    };
  }
}
