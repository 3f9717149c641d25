-- GET /patients/{id} with the bearer token in env AUTH_TOKEN (straight to
-- patient-service, which verifies it), for
-- ids read from the file in env PATIENT_IDS, one per line.
local ids = {}
for line in io.lines(os.getenv("PATIENT_IDS")) do ids[#ids + 1] = line end
local token = os.getenv("AUTH_TOKEN") or error("AUTH_TOKEN (a JWT) is required: every service verifies it")
wrk.headers["authorization"] = "Bearer " .. token
-- The identity headers builds before issue 34 read (later ones verify the token only),
-- so that an A/B against such a build loads both alike.
wrk.headers["x-user-id"] = "bench-clinician"
wrk.headers["x-user-email"] = "bench@example.com"
wrk.headers["x-user-role"] = "CLINICIAN"
request = function()
  return wrk.format("GET", "/patients/" .. ids[math.random(#ids)])
end
