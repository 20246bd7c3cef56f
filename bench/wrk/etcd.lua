-- wrk against etcd's v3 JSON gateway: POST /v3/kv/put of 100-byte values over 1000 keys, or
-- POST /v3/kv/range of the same keys (WRK_OP=get; linearizable, etcd's default). Keys and
-- values are base64, as the gateway wants them; the bodies are built once.
dofile((os.getenv("WRK_LUA_DIR") or "bench/wrk") .. "/keys.lua")
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function b64(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local n = b == nil and 2 or (c == nil and 3 or 4)
    for k = 1, 4 do
      if k <= n then
        local idx = math.floor(v / 2 ^ (6 * (4 - k))) % 64
        out[#out + 1] = alphabet:sub(idx + 1, idx + 1)
      else
        out[#out + 1] = "="
      end
    end
  end
  return table.concat(out)
end

local value = b64(string.rep("v", 100))
local bodies = {}
for i = 0, 999 do
  local key = b64("wrk-" .. i)
  bodies[i] = wrk_op == "get" and ('{"key":"' .. key .. '"}') or ('{"key":"' .. key .. '","value":"' .. value .. '"}')
end
local path = wrk_op == "get" and "/v3/kv/range" or "/v3/kv/put"

request = function()
  return wrk.format("POST", path, json_headers, bodies[next_key()])
end
