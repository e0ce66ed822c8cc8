/**
 * A real AWS SDK for JavaScript v3 client for the demo: fetches instance credentials through the
 * endpoint in AWS_EC2_METADATA_SERVICE_ENDPOINT and prints what it got, never the values.
 */
import { fromInstanceMetadata } from '@aws-sdk/credential-providers';

try {
  const creds = await fromInstanceMetadata({ timeout: 3000, maxRetries: 0 })();
  process.stdout.write(
    `${JSON.stringify({
      ok: creds.accessKeyId.length > 0 && creds.secretAccessKey.length > 0,
      sessionToken: creds.sessionToken !== undefined,
      expiration: creds.expiration?.toISOString(),
    })}\n`,
  );
} catch (err) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: (err as Error).message })}\n`);
  process.exitCode = 1;
}
