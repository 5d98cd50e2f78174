-- A fixed form POST with client authentication: client_credentials (scenarios 1, 2) and
-- introspection (scenario 3). Env: BENCH_BODY, BENCH_AUTH (Authorization header), BENCH_EXPECT.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Accept"] = "application/json"
wrk.headers["Authorization"] = os.getenv("BENCH_AUTH")

function response(status, headers, body)
  bench_check(status, body)
end
