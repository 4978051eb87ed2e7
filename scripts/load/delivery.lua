-- wrk script for scripts/load: POSTs the body in $LOAD_BODY as an Event Grid delivery.
-- $LOAD_KIND: "delivery" (the same event every time), "distinct" (a new event id per request, so that each one is
-- journaled) or "handshake" (a subscription validation).
local kind = os.getenv("LOAD_KIND") or "delivery"
local file = assert(io.open(os.getenv("LOAD_BODY"), "rb"))
local body = file:read("*a")
file:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"
wrk.headers["aeg-event-type"] = kind == "handshake" and "SubscriptionValidation" or "Notification"

local counter = 0
if kind == "distinct" then
  local prefix = tostring(os.time())
  request = function()
    counter = counter + 1
    local fresh = body:gsub('"id"%s*:%s*"[^"]*"', '"id": "load-' .. prefix .. '-' .. counter .. '"', 1)
    return wrk.format(nil, nil, nil, fresh)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d errors=%d non2xx=%d p50_us=%d p99_us=%d duration_us=%d\n",
    summary.requests, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
