-- POST /auth/login. Env LOGIN_MODE:
--   valid:       the account in LOGIN_EMAIL / LOGIN_PASSWORD, from one address
--   brute-one:   a wrong password for LOGIN_EMAIL, always from one address
--   brute-many:  a wrong password for LOGIN_EMAIL, each from another address
--   unknown-many: an email no account has, each from another address
-- (auth-service takes the client address from X-Forwarded-For, which the gateway sets.)
-- Prints how the answers split by status when done.
local mode = os.getenv("LOGIN_MODE") or "valid"
local email = os.getenv("LOGIN_EMAIL")
local password = os.getenv("LOGIN_PASSWORD")
local threads = {}
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"

setup = function(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

init = function()
  statuses = {}
  n = 0
end

request = function()
  n = n + 1
  -- The user logs in from an address of its own; a single-source flood uses another.
  local who, secret, addr = email, password, "203.0.113.10"
  if mode ~= "valid" then secret, addr = "wrong-password-" .. n, "198.51.100.7" end
  if mode == "brute-many" or mode == "unknown-many" then
    addr = string.format("10.%d.%d.%d", math.random(0, 255), math.random(0, 255), math.random(1, 254))
  end
  if mode == "unknown-many" then who = string.format("nobody-%d-%d@example.com", math.random(1e9), n) end
  wrk.headers["x-forwarded-for"] = addr
  return wrk.format(nil, "/auth/login", nil, string.format('{"email":"%s","password":"%s"}', who, secret))
end

response = function(status)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function()
  local total = {}
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for status, count in pairs(s) do total[status] = (total[status] or 0) + count end
  end
  local parts = {}
  for status, count in pairs(total) do table.insert(parts, status .. "=" .. count) end
  table.sort(parts)
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end
