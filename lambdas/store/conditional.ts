import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';

/** Whether a DynamoDB write failed on its condition (nothing was written), as opposed to failing. */
export const isConditionFailure = (err: unknown) => err instanceof ConditionalCheckFailedException;

/** Runs a conditional write: false when its condition failed (nothing was written); other failures throw. */
export async function applied(write: Promise<unknown>): Promise<boolean> {
  try {
    await write;
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}
