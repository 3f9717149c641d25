-- GET /patients?<LIST_QUERY> as a CLINICIAN (the identity headers the gateway forwards):
-- one list shape per run, the query string from env LIST_QUERY.
local query = os.getenv("LIST_QUERY") or "size=20"
wrk.headers["x-user-id"] = "bench-clinician"
wrk.headers["x-user-email"] = "bench@example.com"
wrk.headers["x-user-role"] = "CLINICIAN"
request = function()
  return wrk.format("GET", "/patients?" .. query)
end
