-- Shared by every scenario script (loaded with dofile; BENCH_LUA_DIR is set by bench/run.py).
-- Counts responses whose body does not match BENCH_EXPECT (a Lua pattern) as "body" errors,
-- and prints one machine-readable line (BENCH_JSON {...}) at the end for the harness.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

bad = 0
local expect = os.getenv("BENCH_EXPECT")
if expect == "" then expect = nil end

function bench_check(status, body)
  -- non-2xx/3xx statuses are counted by wrk itself (errors.status)
  if status >= 200 and status < 300 and expect and not string.find(body, expect) then
    bad = bad + 1
  end
end

function bench_counter(name)
  local total = 0
  for _, t in ipairs(threads) do total = total + (t:get(name) or 0) end
  return total
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"body":%d,"starved":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p999":%d,"mean":%.1f,"max":%d,"stdev":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, bench_counter("bad"), bench_counter("starved"),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, latency.stdev))
end
