-- GET /patients/{id} as a CLINICIAN (the identity headers the gateway forwards), for
-- ids read from the file in env PATIENT_IDS, one per line.
local ids = {}
for line in io.lines(os.getenv("PATIENT_IDS")) do ids[#ids + 1] = line end
wrk.headers["x-user-id"] = "bench-clinician"
wrk.headers["x-user-email"] = "bench@example.com"
wrk.headers["x-user-role"] = "CLINICIAN"
request = function()
  return wrk.format("GET", "/patients/" .. ids[math.random(#ids)])
end
