-- GET /patients?<LIST_QUERY> with the bearer token in env AUTH_TOKEN (straight to
-- patient-service, which verifies it):
-- one list shape per run, the query string from env LIST_QUERY.
local query = os.getenv("LIST_QUERY") or "size=20"
local token = os.getenv("AUTH_TOKEN") or error("AUTH_TOKEN (a JWT) is required: every service verifies it")
wrk.headers["authorization"] = "Bearer " .. token
-- The identity headers builds before issue 34 read (later ones verify the token only),
-- so that an A/B against such a build loads both alike.
wrk.headers["x-user-id"] = "bench-clinician"
wrk.headers["x-user-email"] = "bench@example.com"
wrk.headers["x-user-role"] = "CLINICIAN"
request = function()
  return wrk.format("GET", "/patients?" .. query)
end
