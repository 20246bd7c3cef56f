-- wrk against kvnode's HTTP API: anonymous PUT /kv/{key} of 100-byte values over 1000 keys, or
-- linearizable GET /kv/{key} of the same keys (WRK_OP=get). The issue's measurement, as a client
-- that is not this project's own.
local op = os.getenv("WRK_OP") or "put"
local body = '{"value":"' .. string.rep("v", 100) .. '"}'
local headers = { ["Content-Type"] = "application/json" }
local n = 0

function setup(thread)
  thread:set("offset", math.random(0, 999))
end

request = function()
  n = n + 1
  local key = "/kv/wrk-" .. ((n + (offset or 0)) % 1000)
  if op == "get" then return wrk.format("GET", key) end
  return wrk.format("PUT", key, headers, body)
end
