-- Record one tenant's part of a batch atomically (one EVALSHA per tenant and batch).
--
-- KEYS[1]  <prefix>:{tenant}:plan     cached plan limits (hash; see ingestion/plans.py)
-- KEYS[2]  <prefix>:{tenant}:events   stream of accepted raw events (COPY-ready rows)
-- ARGV[1]  key base "<prefix>:{tenant}:" (every key below shares the {tenant} hash tag)
-- ARGV[2]  dedupe window in seconds
-- ARGV[3]  "1" to enforce hard limits, "0" to accept everything (historical imports)
-- ARGV[4]  "1" to append accepted rows to the stream
-- ARGV[5]  month counter TTL (s)        ARGV[6] hour counter TTL (s)
-- ARGV[7]  consumer group of the loader (created with the stream)
-- ARGV[8]  JSON array; per event [id, meter, agg, micro, YYYYMMDDHH, ts_us, member]
--          agg: s = sum (count meters send micro = 1e6), x = max, l = last, u = unique count
-- ARGV[9]  the events' COPY rows, one line each, in the same order (appended to the stream
--          as one entry; when some events are not accepted only their lines are left out)
--
-- Returns "NOPLAN" (cache miss: nothing done), "INACTIVE:<status>" (nothing done), or
-- "<plan>|<upgrade>;<meter>=<limit>|<hard>;...\n<code> <code> ..." where code is
--   D            duplicate (already recorded within the window: SET NX on the id failed)
--   A<qty>       accepted; qty = the month quantity after it, in micro-units
--   O<qty>       accepted above a soft limit (overage)
--   Q<qty>       refused: a hard limit would be exceeded (qty = current quantity)
--   X<qty>       refused: the counter would overflow
--
-- Quota is check-then-increment: the limit is compared with the quantity the event would
-- produce, and only an admitted event changes any counter. Counter writes are summed per
-- batch and flushed at the end (HINCRBY once per key and field), which is what makes large
-- batches cheap. Nothing here reads the clock, so replicas/AOF replay see the same effects.

local plan = KEYS[1]
local call = redis.call
local status = call('HGET', plan, '_status')
if not status then return 'NOPLAN' end
if status ~= 'active' then return 'INACTIVE:' .. status end

local base = ARGV[1]
local window = ARGV[2]
local enforce = ARGV[3] == '1'
local to_stream = ARGV[4] == '1'
local month_ttl = ARGV[5]
local hour_ttl = ARGV[6]
local events = cjson.decode(ARGV[8])
local MICRO = 1000000
local OVERFLOW = 9.0e18
local fmt = string.format
local tonumber = tonumber

-- plan limits, read once per meter and batch
local limits, hards, meter_order = {}, {}, {}
local function load_limit(meter)
  local l, hard = false, false
  local raw = call('HGET', plan, meter)
  if raw then
    local sep = string.find(raw, '|', 1, true)
    local num = string.sub(raw, 1, sep - 1)
    if num ~= '' then l = tonumber(num) end
    hard = string.sub(raw, sep + 1) == '1'
  end
  limits[meter] = l
  hards[meter] = hard
  meter_order[#meter_order + 1] = meter
  return l
end

-- counter state per month / hour bucket; written once at the end of the batch
local months, hours = {}, {}
local function bucket(map, prefix, name)
  local b = { key = base .. prefix .. name, cur = {}, ts = {}, sum = {}, n = {}, r = {}, rn = {}, set = {} }
  map[name] = b
  return b
end
local function current(b, meter)
  local v = b.cur[meter]
  if v == nil then
    v = tonumber(call('HGET', b.key, meter) or '0') or 0
    b.cur[meter] = v
  end
  return v
end
local function current_ts(b, meter)
  local v = b.ts[meter]
  if v == nil then
    v = tonumber(call('HGET', b.key, meter .. ':t') or '0') or 0
    b.ts[meter] = v
  end
  return v
end

local ucount, touched = {}, {}
local accepted_at, out = {}, {}
local month_of = {}

for i = 1, #events do
  local e = events[i]
  local dk = base .. 'id:' .. e[1]
  if not call('SET', dk, '1', 'NX', 'EX', window) then
    out[i] = 'D'
  else
    local meter, agg, v = e[2], e[3], e[4]
    local limit = limits[meter]
    if limit == nil then limit = load_limit(meter) end
    local hard = enforce and hards[meter] and limit
    local hour = e[5]
    local month = month_of[hour]
    if not month then month = string.sub(hour, 1, 6); month_of[hour] = month end
    local mb = months[month] or bucket(months, 'm:', month)
    local code = 'A'
    local newq = 0
    if agg == 's' then
      local cur = current(mb, meter)
      newq = cur + v
      if newq > OVERFLOW then code = 'X'; newq = cur
      elseif hard and newq > hard then code = 'Q'; newq = cur
      else
        mb.cur[meter] = newq
        mb.sum[meter] = (mb.sum[meter] or 0) + v
      end
    elseif agg == 'x' then
      local cur = current(mb, meter)
      if hard and v > hard then code = 'Q'; newq = cur
      elseif v > cur then mb.cur[meter] = v; mb.set[meter] = true; newq = v
      else newq = cur end
    elseif agg == 'l' then
      local cur = current(mb, meter)
      if hard and v > hard then code = 'Q'; newq = cur
      elseif e[6] >= current_ts(mb, meter) then
        mb.cur[meter] = v; mb.ts[meter] = e[6]; mb.set[meter] = true
        newq = v
      else newq = cur end
    else -- 'u': distinct members of a dimension: HyperLogLog (+ exact set under a hard limit)
      local member = e[7]
      local ukey = base .. 'u:' .. meter .. ':' .. month
      local skey = base .. 'us:' .. meter .. ':' .. month
      local cur = ucount[ukey]
      if cur == nil then
        cur = call('PFCOUNT', ukey)
        if hard then cur = math.max(cur, call('SCARD', skey)) end
      end
      if hard then
        if call('SISMEMBER', skey, member) == 0 then
          if (cur + 1) * MICRO > hard then code = 'Q'
          else
            call('SADD', skey, member)
            touched[skey] = month_ttl
            cur = cur + 1
          end
        end
        if code == 'A' then call('PFADD', ukey, member) end
      elseif call('PFADD', ukey, member) == 1 then
        cur = cur + 1
      end
      ucount[ukey] = cur
      touched[ukey] = month_ttl
      newq = cur * MICRO
    end

    if code == 'A' then
      mb.n[meter] = (mb.n[meter] or 0) + 1
      local hb = hours[hour] or bucket(hours, 'h:', hour)
      hb.n[meter] = (hb.n[meter] or 0) + 1
      if agg == 's' then
        hb.sum[meter] = (hb.sum[meter] or 0) + v
      elseif agg == 'x' then
        if v > current(hb, meter) then hb.cur[meter] = v; hb.set[meter] = true end
      elseif agg == 'l' then
        if e[6] >= current_ts(hb, meter) then
          hb.cur[meter] = v; hb.ts[meter] = e[6]; hb.set[meter] = true
        end
      else
        local hu = base .. 'hu:' .. meter .. ':' .. hour
        call('PFADD', hu, e[7])
        touched[hu] = hour_ttl
      end
      accepted_at[#accepted_at + 1] = i
      if limit and newq > limit then code = 'O' end
    else
      call('DEL', dk) -- not recorded, so a retry (e.g. after an upgrade) is not a duplicate
      mb.r[meter] = (mb.r[meter] or 0) + v
      mb.rn[meter] = (mb.rn[meter] or 0) + 1
    end
    if limit or code ~= 'A' then out[i] = code .. fmt('%d', newq) else out[i] = 'A' end
  end
end

local function flush(map, ttl)
  for _, b in pairs(map) do
    local key = b.key
    for m, d in pairs(b.sum) do call('HINCRBY', key, m, fmt('%d', d)) end
    for m, d in pairs(b.n) do call('HINCRBY', key, m .. ':n', d) end
    for m, d in pairs(b.r) do call('HINCRBY', key, m .. ':r', fmt('%d', d)) end
    for m, d in pairs(b.rn) do call('HINCRBY', key, m .. ':rn', d) end
    for m in pairs(b.set) do
      call('HSET', key, m, fmt('%d', b.cur[m]))
      if b.ts[m] then call('HSET', key, m .. ':t', fmt('%d', b.ts[m])) end
    end
    call('EXPIRE', key, ttl)
  end
end
flush(months, month_ttl)
flush(hours, hour_ttl)
for key, ttl in pairs(touched) do call('EXPIRE', key, ttl) end
local n_rows = #accepted_at
if to_stream and n_rows > 0 then
  local blob = ARGV[9]
  if n_rows < #events then -- keep only the accepted events' lines
    local keep, rows, line, pos = {}, {}, 1, 1
    for _, i in ipairs(accepted_at) do keep[i] = true end
    while pos <= #blob do
      local stop = string.find(blob, '\n', pos, true)
      if keep[line] then rows[#rows + 1] = string.sub(blob, pos, stop) end
      pos = stop + 1
      line = line + 1
    end
    blob = table.concat(rows)
  end
  if call('EXISTS', KEYS[2]) == 0 then
    call('XGROUP', 'CREATE', KEYS[2], ARGV[7], '$', 'MKSTREAM')
  end
  call('XADD', KEYS[2], '*', 'n', tostring(n_rows), 'rows', blob)
end

local header = {(call('HGET', plan, '_plan') or '') .. '|' .. (call('HGET', plan, '_upgrade') or '')}
for _, m in ipairs(meter_order) do
  local l = limits[m]
  header[#header + 1] = m .. '=' .. (l and fmt('%d', l) or '') .. '|' .. (hards[m] and '1' or '0')
end
return table.concat(header, ';') .. '\n' .. table.concat(out, ' ')
