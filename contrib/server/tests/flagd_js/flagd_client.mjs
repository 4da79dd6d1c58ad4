// A JS app written for flagd: @openfeature/flagd-provider (npm) in RPC or
// in-process mode, pointed at `flagyard serve --grpc-listen`. Evaluates FLAG
// every 20 ms for a bounded time and prints one JSON line each time the answer
// changes.
//
// Usage: node flagd_client.mjs HOST PORT SELECTOR FLAG SECONDS [rpc|in-process]
import { OpenFeature } from '@openfeature/server-sdk';
import { FlagdProvider } from '@openfeature/flagd-provider';

const [host, port, selector, flag, seconds, mode = 'in-process'] = process.argv.slice(2);
const provider = new FlagdProvider({
  host,
  port: Number(port),
  resolverType: mode,
  selector: selector || undefined,
});
await OpenFeature.setProviderAndWait(provider);
const client = OpenFeature.getClient();
const context = { targetingKey: 'user-7', email: 'ada@example.com' };
let last = '';
const deadline = Date.now() + Number(seconds) * 1000;
while (Date.now() < deadline) {
  const details = await client.getBooleanDetails(flag, false, context);
  const answer = JSON.stringify({
    value: details.value,
    variant: details.variant ?? null,
    reason: details.reason ?? null,
    error: details.errorCode ?? null,
  });
  if (answer !== last) {
    console.log(answer);
    last = answer;
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await OpenFeature.close();
process.exit(0);
