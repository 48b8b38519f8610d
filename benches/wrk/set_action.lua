-- A Set Action per request, as a person's confirmed clicks would make them:
-- a new Idempotency-Key and two customer IDs never used before, the bearer
-- token and the path from the environment (WRK_TOKEN, WRK_PATH, WRK_RUN).
-- done() prints one JSON line the benchmark reads.

local token = os.getenv("WRK_TOKEN") or ""
local path = os.getenv("WRK_PATH") or "/api/v1/actions"
local run = os.getenv("WRK_RUN") or "run"
local threads = {}
local counter = 0
-- `tid` is a global of each thread's own Lua state, set by setup() below
-- (a local here would shadow it, and both threads would send the same keys).

function setup(thread)
   thread:set("tid", #threads + 1)
   table.insert(threads, thread)
end

function request()
   counter = counter + 1
   local id = run .. "-" .. tid .. "-" .. counter
   local body = '{"cluster":"bench","action":"Trans-Begin","cids":["W' .. id .. 'a","W' .. id .. 'b"]}'
   local headers = {
      ["Content-Type"] = "application/json",
      ["Authorization"] = "Bearer " .. token,
      ["Idempotency-Key"] = id,
   }
   return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
   local non_2xx = summary.errors.status
   local failed = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
   io.write(string.format(
      '{"requests":%d,"non_2xx":%d,"socket_errors":%d,"seconds":%.3f,"p50_ms":%.3f,"p99_ms":%.3f}\n',
      summary.requests, non_2xx, failed, summary.duration / 1e6,
      latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
