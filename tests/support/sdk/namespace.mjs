// Drives the emulator's namespace topic with the official Event Grid namespaces SDK for JavaScript: publishes two
// events, receives them, acknowledges one (with an unknown token beside it), releases the other, receives it
// again and rejects it.
// Usage: node namespace.mjs <SDK folder> <endpoint> <key> <topic> <subscription>
// Prints one JSON line per step ({"step": ...}) and one per HTTP exchange ({"request": ...}).
import { createRequire } from "node:module";
import path from "node:path";

const [sdkFolder, endpoint, key, topic, subscription] = process.argv.slice(2);
const require = createRequire(path.join(sdkFolder, "package.json"));
const { EventGridSenderClient, EventGridReceiverClient, AzureKeyCredential } = require("@azure/eventgrid-namespaces");

// Seen after the SDK's own policies have set the headers, before the request leaves.
const observer = {
  name: "emulatorTestObserver",
  async sendRequest(request, next) {
    const response = await next(request);
    const url = new URL(request.url);
    console.log(
      JSON.stringify({
        request: {
          path: url.pathname,
          query: url.search,
          authorization: request.headers.get("authorization") ?? null,
          contentType: request.headers.get("content-type") ?? null,
          status: response.status,
        },
      }),
    );
    return response;
  },
};
// The emulator listens on plain http over loopback.
const options = { additionalPolicies: [{ policy: observer, position: "perRetry" }], allowInsecureConnection: true };
const credential = new AzureKeyCredential(key);
const sender = new EventGridSenderClient(endpoint, credential, topic, options);
const receiver = new EventGridReceiverClient(endpoint, credential, topic, subscription, options);

const step = (name, value) => console.log(JSON.stringify({ step: name, value }));

await sender.sendEvents([
  { type: "Contoso.Test", source: "/sdk", id: "sdk-1", time: new Date(), data: { n: 1 }, specversion: "1.0" },
  { type: "Contoso.Test", source: "/sdk", id: "sdk-2", time: new Date(), data: { n: 2 }, specversion: "1.0" },
]);
step("sent", 2);

const first = await receiver.receiveEvents({ maxEvents: 10, maxWaitTime: 10 });
step("received", first.details.map((d) => ({ id: d.event.id, deliveryCount: d.brokerProperties.deliveryCount, data: d.event.data })));
const [one, two] = first.details.map((d) => d.brokerProperties.lockToken);

const acknowledged = await receiver.acknowledgeEvents([one, "00000000-0000-0000-0000-000000000000"]);
step("acknowledged", {
  succeeded: acknowledged.succeededLockTokens.length,
  failed: acknowledged.failedLockTokens.map((f) => f.error.code ?? f.error.message),
});

const released = await receiver.releaseEvents([two], { releaseDelay: "0" });
step("released", released.succeededLockTokens.length);

const again = await receiver.receiveEvents({ maxEvents: 10, maxWaitTime: 10 });
step("received again", again.details.map((d) => ({ id: d.event.id, deliveryCount: d.brokerProperties.deliveryCount })));

const renewed = await receiver.renewEventLocks([again.details[0].brokerProperties.lockToken]);
step("renewed", renewed.succeededLockTokens.length);

const rejected = await receiver.rejectEvents([again.details[0].brokerProperties.lockToken]);
step("rejected", rejected.succeededLockTokens.length);
