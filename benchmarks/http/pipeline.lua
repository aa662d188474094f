-- wrk script of the HTTP benchmark (http.mjs). Usage: wrk ... -s http/pipeline.lua URL -- DEPTH [BODY]
--   DEPTH 1:  no `request` function, so wrk stays on its static path (the same as wrk without a
--             script): one GET per write, keep-alive.
--   DEPTH >1: each write carries DEPTH GETs back to back; the next batch is written when all of
--             them are answered. wrk then records one latency sample per batch, not per request.
-- At the end one line "wrk-json {...}" goes to stdout for the runner: requests, bytes, duration
-- (µs), errors, latency percentiles (µs) and wrk's own CPU time (clock ticks, read from
-- /proc/self/stat while wrk still runs), which shows whether the load generator had headroom.

function init(args)
  local depth = tonumber(args[1]) or 1
  local body = tonumber(args[2]) or 0 -- BODY > 0: each request POSTs that many bytes (an upload)
  if body > 0 then
    wrk.method = 'POST'
    wrk.body = string.rep('x', body)
    wrk.headers['Content-Type'] = 'application/octet-stream'
  end
  if depth > 1 then
    local one = wrk.format()
    local batch = string.rep(one, depth)
    request = function() return batch end
  end
end

-- utime + stime of this wrk process (fields 14 and 15 of /proc/self/stat), in clock ticks.
local function cpu_ticks()
  local f = io.open('/proc/self/stat')
  if not f then return -1 end
  local rest = f:read('*a'):match('^.*%) (.*)$') -- after the last ')', as comm may hold one
  f:close()
  local fields, i = {}, 3 -- the text after ") " starts at field 3
  for w in rest:gmatch('%S+') do fields[i] = tonumber(w); i = i + 1 end
  return fields[14] + fields[15]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'wrk-json {"requests":%d,"bytes":%d,"durationUs":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latencyUs":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},"cpuTicks":%d}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean, cpu_ticks()))
end
