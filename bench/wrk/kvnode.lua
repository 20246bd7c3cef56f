-- wrk against kvnode's HTTP API: anonymous PUT /kv/{key} of 100-byte values over 1000 keys, or
-- linearizable GET /kv/{key} of the same keys (WRK_OP=get). The issue's measurement, as a client
-- that is not this project's own.
dofile((os.getenv("WRK_LUA_DIR") or "bench/wrk") .. "/keys.lua")
local body = '{"value":"' .. string.rep("v", 100) .. '"}'

request = function()
  local key = "/kv/wrk-" .. next_key()
  if wrk_op == "get" then return wrk.format("GET", key) end
  return wrk.format("PUT", key, json_headers, body)
end
