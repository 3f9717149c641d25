-- POST /patients, each with its own email (thread id, counter, and a random run
-- prefix, so that a run never collides with an earlier one), with the bearer token in
-- env AUTH_TOKEN: straight to patient-service (which verifies it), or with
-- CREATE_PATH=/api/patients through the gateway.
local counter = 0
local thread_id = 0
local run = tostring(os.time()) .. tostring(math.random(1000000))
setup = function(thread)
  thread:set("thread_id", math.random(1000000000))
end
init = function()
  thread_id = wrk.thread:get("thread_id")
end
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
local path = os.getenv("CREATE_PATH") or "/patients"
local token = os.getenv("AUTH_TOKEN") or error("AUTH_TOKEN (a JWT) is required: every service verifies it")
wrk.headers["authorization"] = "Bearer " .. token
-- The identity headers builds before issue 34 read (later ones verify the token only),
-- so that an A/B against such a build loads both alike.
wrk.headers["x-user-id"] = "bench-clinician"
wrk.headers["x-user-email"] = "bench@example.com"
wrk.headers["x-user-role"] = "CLINICIAN"
request = function()
  counter = counter + 1
  local body = string.format(
    '{"name":"Bench Patient","email":"b%s-%d-%d@example.com","address":"1 Bench Street",' ..
    '"dateOfBirth":"1980-01-01","registeredDate":"2026-01-01"}', run, thread_id, counter)
  return wrk.format(nil, path, nil, body)
end
