// Drives the emulator's recording operations with the official Call Automation SDK for JavaScript.
// Usage: node record.mjs <SDK folder> <connection string> <server call id> <state callback url>
// The SDK is loaded from the folder npm installed it in (an ES module resolves packages from its own location,
// which is the source tree, not the tools folder).
// Prints one JSON line per step ({"step": ...}) and one per HTTP exchange ({"request": ...}), so that the test
// can check both what the SDK answered and what it sent.
import { createRequire } from "node:module";
import path from "node:path";

const [sdkFolder, connectionString, serverCallId, callbackUrl] = process.argv.slice(2);
const require = createRequire(path.join(sdkFolder, "package.json"));
const { CallAutomationClient } = require("@azure/communication-call-automation");

// Seen after the SDK's own policies have set the headers, before the request leaves.
const observer = {
  name: "emulatorTestObserver",
  async sendRequest(request, next) {
    const response = await next(request);
    const url = new URL(request.url);
    console.log(
      JSON.stringify({
        request: {
          method: request.method,
          path: url.pathname,
          apiVersion: url.searchParams.get("api-version"),
          repeatabilityRequestId: request.headers.get("repeatability-request-id") ?? null,
          repeatabilityFirstSent: request.headers.get("repeatability-first-sent") ?? null,
          signed: (request.headers.get("authorization") ?? "").startsWith("HMAC-SHA256 "),
          status: response.status,
        },
      }),
    );
    return response;
  },
};

const client = new CallAutomationClient(connectionString, {
  additionalPolicies: [{ policy: observer, position: "perRetry" }],
  // The emulator listens on plain http over loopback; the SDK's pipeline refuses http unless told otherwise.
  allowInsecureConnection: true,
  // A failed step fails the test at once instead of retrying for a minute.
  retryOptions: { maxRetries: 0 },
});
const recording = client.getCallRecording();

const started = await recording.start({
  callLocator: { id: serverCallId, kind: "serverCallLocator" },
  recordingStateCallbackEndpointUrl: callbackUrl,
  recordingContent: "audio",
  recordingChannel: "mixed",
  recordingFormat: "wav",
});
console.log(JSON.stringify({ step: "start", recordingId: started.recordingId, state: started.recordingState }));
await recording.pause(started.recordingId);
let state = await recording.getState(started.recordingId);
console.log(JSON.stringify({ step: "pause", state: state.recordingState }));
await recording.resume(started.recordingId);
state = await recording.getState(started.recordingId);
console.log(JSON.stringify({ step: "resume", state: state.recordingState }));
await recording.stop(started.recordingId);
console.log(JSON.stringify({ step: "stop" }));
