-- What both stores' scripts share: the operation (WRK_OP, put or get), JSON headers, and 1000
-- keys that each of wrk's threads walks from an offset of its own, one request after another.
wrk_op = os.getenv("WRK_OP") or "put"
json_headers = { ["Content-Type"] = "application/json" }
local n = 0

function setup(thread)
  thread:set("offset", math.random(0, 999))
end

-- The key number (0-999) of this thread's next request.
function next_key()
  n = n + 1
  return (n + (offset or 0)) % 1000
end
