-- wrk script for scripts/bench. From the environment:
--   BENCH_METHOD, BENCH_BODY, BENCH_HEADERS ("Name: value|Name: value")
--   BENCH_ID_IN_BODY=1   each request's body gets a fresh JSON-RPC id in place of __ID__
--   BENCH_LINES=path     each request takes the next line of this file in place of __LINE__
--                        (single-use values: codes to redeem, tokens to cache); once used up,
--                        the request is sent with an empty value
--   BENCH_EXPECT=401     the status that counts as a success (default: any 2xx)
--   BENCH_CAPTURE=path   a JSON member ("access_token") or "code" from the Location header of
--                        each answer is appended to path.<thread>
-- The summary is one line: BENCH {json}.
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

local method, body, headers, expect, lines, next_line, id, capture, out, kind
local written = 0
-- Read by done() through thread:get, so global in each thread's state.
bad = 0
function init(args)
  method = os.getenv("BENCH_METHOD") or "GET"
  body = os.getenv("BENCH_BODY")
  expect = tonumber(os.getenv("BENCH_EXPECT") or "")
  headers = {}
  for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
    local k, v = string.match(pair, "^%s*([^:]+):%s*(.*)$")
    if k then headers[k] = v end
  end
  id = tid * 100000000
  local path = os.getenv("BENCH_LINES")
  if path then
    lines, next_line = {}, 1
    for l in io.lines(path) do table.insert(lines, l) end
  end
  capture = os.getenv("BENCH_CAPTURE")
  if capture then out = io.open(capture .. "." .. tid, "w") end
  kind = os.getenv("BENCH_CAPTURE_KIND") or "access_token"
end

function request()
  local b = body
  if b and os.getenv("BENCH_ID_IN_BODY") then
    id = id + 1
    b = string.gsub(b, "__ID__", tostring(id))
  end
  local h = headers
  if lines then
    local v = lines[next_line] or ""
    next_line = next_line + 1
    if b then b = string.gsub(b, "__LINE__", v) end
    h = {}
    for k, hv in pairs(headers) do h[k] = string.gsub(hv, "__LINE__", v) end
  end
  return wrk.format(method, nil, h, b)
end

-- Only defined when needed: wrk parses every answer for a script that has it.
if os.getenv("BENCH_EXPECT") or os.getenv("BENCH_CAPTURE") then
function response(status, hdrs, resp)
  if expect then
    if status ~= expect then bad = bad + 1 end
  elseif status < 200 or status > 299 then
    bad = bad + 1
  end
  if out then
    local v
    if kind == "code" then
      local loc = hdrs["Location"] or hdrs["location"] or ""
      v = string.match(loc, "[?&]code=([^&]+)")
    else
      v = string.match(resp or "", '"' .. kind .. '"%s*:%s*"([^"]+)"')
    end
    if v then
      out:write(v, "\n")
      written = written + 1
      -- wrk never closes a thread's script state: flush as we go.
      if written % 100 == 0 then out:flush() end
    end
  end
end
end

function done(summary, latency, requests)
  -- Without a response() of ours, wrk's own count of answers >= 400.
  local wrong = summary.errors.status
  if response then
    wrong = 0
    for _, t in ipairs(threads) do wrong = wrong + (t:get("bad") or 0) end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"duration_us":%d,"wrong_status":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, wrong, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
