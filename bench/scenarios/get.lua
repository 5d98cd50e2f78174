-- A GET, with a Bearer token when BENCH_AUTH is set: userinfo (4), JWKS and discovery (5).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "GET"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
wrk.headers["Accept"] = "application/json"

function response(status, headers, body)
  bench_check(status, body)
end
