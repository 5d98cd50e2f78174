-- Refresh token rotation (scenario 7). BENCH_TOKENS names a file of refresh tokens, one per
-- line, each from its own code flow (its own token family). Every refresh uses a token exactly
-- once and the token it returns goes back in the queue, so each family is refreshed strictly in
-- sequence, each time with the token its previous refresh returned. (wrk's Lua has no
-- per-connection state, so a family may move between connections; there are as many families
-- as connections plus a few spares, so no connection waits for one.)
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local auth = os.getenv("BENCH_AUTH")
local threads_total = tonumber(os.getenv("BENCH_THREADS") or "1")
local queue, head, tail = {}, 1, 0
starved = 0

local function urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

function init(args)
  local n = 0
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    if line ~= "" then
      if n % threads_total == (id - 1) then tail = tail + 1; queue[tail] = line end
      n = n + 1
    end
  end
end

local headers = {
  ["Content-Type"] = "application/x-www-form-urlencoded",
  ["Accept"] = "application/json",
  ["Authorization"] = auth,
}

function request()
  local token
  if head <= tail then
    token = queue[head]; queue[head] = nil; head = head + 1
  else
    starved = starved + 1   -- a family was lost to an error; this request will fail
    token = "no-token-left"
  end
  return wrk.format("POST", nil, headers, "grant_type=refresh_token&refresh_token=" .. urlencode(token))
end

function response(status, headers, body)
  if status == 200 then
    local rt = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if rt then tail = tail + 1; queue[tail] = rt else bad = bad + 1 end
  end
end
