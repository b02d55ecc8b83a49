-- Record one tenant's part of a batch atomically (one EVALSHA per tenant and batch).
--
-- KEYS[1]  <prefix>:{tenant}:plan     cached plan history (hash; see ingestion/plans.py)
-- KEYS[2]  <prefix>:{tenant}:events   stream of accepted raw events (COPY-ready rows)
-- ARGV[1]  key base "<prefix>:{tenant}:" (every key below shares the {tenant} hash tag)
-- ARGV[2]  dedupe window in seconds
-- ARGV[3]  "1" to enforce hard limits, "0" to accept everything (historical imports)
-- ARGV[4]  "1" to append accepted rows to the stream
-- ARGV[5]  month counter TTL (s)        ARGV[6] hour counter TTL (s)
-- ARGV[7]  consumer group of the loader (created with the stream)
-- ARGV[8]  JSON array; per event [id, meter, agg, vh, vl, YYYYMMDDHH, ts_us, member]
--          value in micro-units = vh * 1e9 + vl (two exact doubles: see "Numbers" below)
--          agg: s = sum (count meters send 1e6), x = max, l = last, u = unique count
-- ARGV[9]  the events' COPY rows, one line each, in the same order (appended to the stream
--          as one entry; when some events are not accepted only their lines are left out)
-- ARGV[10] event budget: events per second ("0": no budget)   ARGV[11] its burst (events)
-- ARGV[12] now, epoch milliseconds (the caller's clock; the script never reads one)
-- ARGV[13] "1" when an id occurs more than once in these events
-- ARGV[14] the request id of the batch ("" or absent: none)   ARGV[15] its W3C traceparent;
--          both are stored with the stream entry (fields rid, tp) for the loader's logs/spans
--
-- Returns, with nothing written:
--   "NOPLAN" / "STALE"   the plan cache is missing / does not reach back to an event's time
--   "INACTIVE:<status>"  the tenant is not active
--   "BUDGET:<ms>"        over the event budget: retry after <ms> (-1: batch > burst)
--   "BADARG:<i>"         event i's arguments are out of range (the caller validates first)
--   "CORRUPT:<key> <field>"  a stored counter is not a whole number in range
-- or "<segments>\n<segment line>...\n<code> <code> ...": segments is the number of plan
-- terms cached (the last one is the plan in force now); one line per term used,
-- "<i>:<plan>|<upgrade>;<meter>=<limit>|<hard>;..."; per event a code
--   D            duplicate (already recorded within the window, or earlier in this batch)
--   Z<qty>       accepted with no effect: a zero value of a sum/max meter (nothing written)
--   A<qty>       accepted; qty = the month quantity after it, in micro-units
--   O<qty>       accepted above a soft limit (overage)
--   Q<qty>       refused: a hard limit would be exceeded (qty = current quantity)
--   X<qty>       refused: the counter would exceed its capacity (9e18 micro-units)
-- followed by "@<i>" when the event was judged under plan term i other than the last.
-- (qty is left out for an accepted event of a meter without limit.)
--
-- All or nothing: phase 0 checks every argument, the budget and every stored value the
-- script will overwrite; phase 1 decides every event with reads only; phase 2 writes (SET,
-- HSET of final values, PFADD/SADD, XADD), and nothing in it can fail on a value. Quota is
-- check-then-increment: the limit is compared with the quantity the event would produce.
--
-- Numbers: a quantity in micro-units is a pair (hi, lo) = hi * 1e9 + lo, 0 <= lo < 1e9, both
-- exact Lua doubles, so sums are exact up to the counter capacity MAX = 9e18 micro-units
-- (9e12 units); refused quantities saturate at REFUSED_MAX (1e24 micro-units).

local call = redis.call
local fmt, sub, floor = string.format, string.sub, math.floor
local B = 1000000000
local MICRO = 1000000
local MAXH = 9000000000            -- counter capacity: (MAXH, 0)
local VMAXH = 1000000000           -- one event: at most (VMAXH, 0) = 1e12 units
local RMAXH = 1000000000000000     -- refused quantity saturates at (RMAXH, 0)
local EXACT = 9007199254740991     -- 2^53 - 1: the largest exact whole double

local plan = KEYS[1]
local meta = call('HMGET', plan, '_status', '_covers', '_n', '_seg:1')
if not meta[1] then return 'NOPLAN' end
if meta[1] ~= 'active' then return 'INACTIVE:' .. meta[1] end
local covers, nseg = tonumber(meta[2]), tonumber(meta[3])
if not covers or not nseg or nseg < 1 then return 'NOPLAN' end

local base = ARGV[1]
local enforce = ARGV[3] == '1'
local ok, events = pcall(cjson.decode, ARGV[8])
if not ok or type(events) ~= 'table' then return 'BADARG:0' end
local nev = #events

-- phase 0: the budget ---------------------------------------------------------------------
local rate, burst, now_ms = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local bkey, tokens, bts = base .. 'eb', nil, nil
if rate and rate > 0 then
  if nev > burst then return 'BUDGET:-1' end
  local state = call('HMGET', bkey, 'tokens', 'ts')
  tokens = tonumber(state[1]) or burst
  bts = tonumber(state[2]) or now_ms
  if now_ms > bts then tokens = math.min(burst, tokens + (now_ms - bts) / 1000 * rate); bts = now_ms end
  if tokens < nev then return 'BUDGET:' .. math.ceil((nev - tokens) / rate * 1000) end
end

-- phase 0: plan terms (segments) ------------------------------------------------------------
local seg_from, seg_to, seg_head = {}, {}, {}
for i = 1, nseg do
  local raw = i == 1 and meta[4] or call('HGET', plan, '_seg:' .. i)
  if not raw then return 'NOPLAN' end
  local f, t, rest = string.match(raw, '^(%d+)|(%d*)|(.*)$')
  seg_from[i], seg_to[i], seg_head[i] = tonumber(f), tonumber(t), rest
end
local last_from = seg_from[nseg]
local function segment(ts) -- the term in force at ts (the first term before the first)
  if ts >= last_from then return nseg end
  for i = nseg - 1, 1, -1 do
    if ts >= seg_from[i] then return i end
  end
  return 1
end

-- limits per term and meter, read once: pair, or false when the meter has no limit
local lim_h, lim_l, hards, used = {}, {}, {}, {}
local function parse(s, maxh) -- a stored whole number -> hi, lo (nil when not one in range)
  if not s then return 0, 0 end
  local n = #s
  if n == 0 or n > 24 or string.find(s, '%D') then return nil end
  if n <= 9 then return 0, tonumber(s) end
  local h, l = tonumber(sub(s, 1, n - 9)), tonumber(sub(s, n - 8))
  if h > maxh or (h == maxh and l > 0) then return nil end
  return h, l
end
local function load_limit(seg, meter)
  local lh, ll, hard = false, false, false
  local raw = call('HGET', plan, seg .. ':' .. meter)
  if raw then
    local sep = string.find(raw, '|', 1, true)
    local num = sub(raw, 1, sep - 1)
    if num ~= '' then lh, ll = parse(num, MAXH); if not lh then lh, ll = MAXH, 0 end end
    hard = sub(raw, sep + 1) == '1'
  end
  if not lim_h[seg] then lim_h[seg], lim_l[seg], hards[seg] = {}, {}, {}; used[#used + 1] = seg end
  lim_h[seg][meter], lim_l[seg][meter], hards[seg][meter] = lh, ll, hard
  return lh
end

-- phase 0: ids, and which of them were already recorded (one MGET per 1000 events) ----------
local dks = {}
for i = 1, nev do
  local e = events[i]
  if type(e) ~= 'table' or type(e[1]) ~= 'string' then return 'BADARG:' .. i end
  dks[i] = base .. 'id:' .. e[1]
end
local exists
if nev <= 1000 then
  exists = nev > 0 and call('MGET', unpack(dks)) or {}
else
  exists = {}
  for first = 1, nev, 1000 do
    local last = math.min(nev, first + 999)
    local found = call('MGET', unpack(dks, first, last))
    for j = 1, last - first + 1 do exists[first + j - 1] = found[j] end
  end
end

-- counter state per (key, meter): stored values are read and checked when first needed, so a
-- value out of range refuses the batch before anything is written
local states, reads = {}, {}
local function state(key, meter)
  local byk = states[key]
  if not byk then byk = {}; states[key] = byk end
  local s = byk[meter]
  if s then return s end
  local r = call('HMGET', key, meter, meter .. ':n', meter .. ':r', meter .. ':rn', meter .. ':t')
  s = { key = key, meter = meter, dn = 0, drn = 0 }
  s.qh, s.ql = parse(r[1], MAXH)
  s.n0, s.t = tonumber(r[2] or '0'), tonumber(r[5] or '0')
  if not s.qh or not s.n0 or s.n0 < 0 or s.n0 > EXACT or not s.t or s.t < 0 or s.t > EXACT then
    return nil
  end
  -- refused counters are informational: a value a former version left out of range restarts
  s.rh, s.rl = parse(r[3], RMAXH)
  if not s.rh then s.rh, s.rl = 0, 0 end
  s.rn0 = tonumber(r[4] or '0')
  if not s.rn0 or s.rn0 < 0 or s.rn0 > EXACT then s.rn0 = 0 end
  byk[meter] = s
  reads[#reads + 1] = s
  return s
end

-- phase 1: check and decide every event, in order (reads only) -----------------------------
local function gt(ah, al, bh, bl) return ah > bh or (ah == bh and al > bl) end
local function show(h, l) if h > 0 then return fmt('%d%09d', h, l) end return fmt('%d', l) end
local function upair(count) -- a whole number of units (< 2^53 / 1e6) -> micro-unit pair
  local rest = count % 1000
  return (count - rest) / 1000, rest * MICRO
end

local seen, out, accepted_at, deferred, seg_of = {}, {}, {}, {}, {}
local uniq, hu_members, touched = {}, {}, {}
local function unique_state(meter, month, hard)
  local ukey = base .. 'u:' .. meter .. ':' .. month
  local u = uniq[ukey]
  if not u then
    u = { key = ukey, skey = base .. 'us:' .. meter .. ':' .. month, pf = {}, add = {}, new = {} }
    u.cur = call('PFCOUNT', ukey)
    uniq[ukey] = u
  end
  if hard and not u.exact then u.exact = true; u.cur = math.max(u.cur, call('SCARD', u.skey)) end
  return u
end

local AGG = { s = true, x = true, l = true, u = true }
local repeats = ARGV[13] == '1' -- an id occurs twice in this batch: remember the accepted ones
local last_hour, last_meter, s, h, month
for i = 1, nev do
  local e = events[i]
  local meter, agg, vh, vl, hour, ts = e[2], e[3], e[4], e[5], e[6], e[7]
  -- the arguments, again: whole numbers in range (Python checked them; this is the backstop)
  if type(vl) ~= 'number' or vl < 0 or vl >= B or vl % 1 ~= 0
    or type(vh) ~= 'number' or (vh ~= 0 and (vh < 0 or vh > VMAXH or vh % 1 ~= 0 or (vh == VMAXH and vl > 0)))
    or type(ts) ~= 'number' or ts < 0 or ts > EXACT or ts % 1 ~= 0
    or not AGG[agg] or type(meter) ~= 'string' or type(e[8]) ~= 'string' then
    return 'BADARG:' .. i
  end
  if ts < covers then return 'STALE' end
  if hour ~= last_hour or meter ~= last_meter then
    if type(hour) ~= 'string' or #hour ~= 10 then return 'BADARG:' .. i end
    month = sub(hour, 1, 6)
    local mkey, hkey = base .. 'm:' .. month, base .. 'h:' .. hour
    s, h = state(mkey, meter), state(hkey, meter)
    if not s then return 'CORRUPT:' .. mkey .. ' ' .. meter end
    if not h then return 'CORRUPT:' .. hkey .. ' ' .. meter end
    last_hour, last_meter = hour, meter
  end
  local seg = nseg
  if ts < last_from then seg = segment(ts) end
  seg_of[i] = seg

  if exists[i] or (repeats and seen[e[1]]) then
    out[i] = 'D'
  else
    local lims = lim_h[seg]
    local lh = lims and lims[meter]
    if lh == nil then lh = load_limit(seg, meter) end
    local ll = lim_l[seg][meter]
    local hard = enforce and hards[seg][meter] and lh
    local code, qh, ql = 'A', s.qh, s.ql
    if agg == 's' and (vh ~= 0 or vl ~= 0) then
      local nh, nl = qh + vh, ql + vl
      if nl >= B then nh = nh + 1; nl = nl - B end
      if nh > MAXH or (nh == MAXH and nl > 0) then code = 'X'
      elseif hard and (nh > lh or (nh == lh and nl > ll)) then code = 'Q'
      else s.qh, s.ql, s.dq = nh, nl, true; qh, ql = nh, nl end
    elseif agg == 'u' then
      local u = unique_state(meter, month, hard)
      local member = e[8]
      if hard then
        if not u.new[member] and call('SISMEMBER', u.skey, member) == 0 then
          local ch, cl = upair(u.cur + 1)
          if gt(ch, cl, lh, ll) then code = 'Q'
          else u.new[member] = true; u.add[#u.add + 1] = member; u.cur = u.cur + 1 end
        end
        qh, ql = upair(u.cur)
        if code == 'A' then u.pf[#u.pf + 1] = member end
      else
        deferred[#deferred + 1] = i -- counted by PFADD in phase 2, in order
        u.pf[#u.pf + 1] = i
        code = 'U'
      end
    elseif vh == 0 and vl == 0 and agg ~= 'l' then
      code = 'Z' -- a zero can change neither a sum nor a maximum
    else -- 'x' max, 'l' last
      if hard and gt(vh, vl, lh, ll) then code = 'Q'
      elseif (agg == 'x' and gt(vh, vl, qh, ql)) or (agg == 'l' and ts >= s.t) then
        s.qh, s.ql, s.dq = vh, vl, true; qh, ql = vh, vl
        if agg == 'l' then s.t, s.dt = ts, true end
      end
    end

    if code == 'A' or code == 'U' then
      if repeats then seen[e[1]] = true end
      s.dn = s.dn + 1
      h.dn = h.dn + 1
      if agg == 's' then
        local nh, nl = h.qh + vh, h.ql + vl
        if nl >= B then nh = nh + 1; nl = nl - B end
        h.qh, h.ql, h.dq = nh, nl, true
      elseif agg == 'x' then
        if gt(vh, vl, h.qh, h.ql) then h.qh, h.ql, h.dq = vh, vl, true end
      elseif agg == 'l' then
        if ts >= h.t then h.qh, h.ql, h.dq, h.t, h.dt = vh, vl, true, ts, true end
      else
        local hu = base .. 'hu:' .. meter .. ':' .. hour
        local list = hu_members[hu]
        if not list then list = {}; hu_members[hu] = list end
        list[#list + 1] = e[8]
      end
      accepted_at[#accepted_at + 1] = i
      if code == 'A' and lh and gt(qh, ql, lh, ll) then code = 'O' end
    elseif code ~= 'Z' then -- refused: only the refused counters move
      local rh, rl = s.rh + vh, s.rl + vl
      if rl >= B then rh = rh + 1; rl = rl - B end
      if rh >= RMAXH then rh, rl = RMAXH, 0 end
      s.rh, s.rl, s.dr = rh, rl, true
      s.drn = s.drn + 1
    end
    if seg == nseg then
      if code == 'U' then out[i] = ''
      elseif lh or code ~= 'A' then out[i] = code .. show(qh, ql)
      else out[i] = 'A' end
    elseif code == 'U' then out[i] = '@' .. seg
    else out[i] = code .. show(qh, ql) .. '@' .. seg end
  end
end

-- every hour sum stays in range (it cannot exceed its month's unless the store was edited)
for _, s in ipairs(reads) do
  if s.dq and gt(s.qh, s.ql, MAXH, 0) then return 'CORRUPT:' .. s.key .. ' ' .. s.meter end
end

-- phase 2: write ------------------------------------------------------------------------------
if tokens then
  call('HSET', bkey, 'tokens', tostring(tokens - nev), 'ts', fmt('%d', bts))
  call('PEXPIRE', bkey, math.ceil(burst / rate * 1000) + 1000)
end
local window = ARGV[2]
for _, i in ipairs(accepted_at) do call('SET', dks[i], '1', 'EX', window) end

local month_ttl, hour_ttl = ARGV[5], ARGV[6]
for _, s in ipairs(reads) do
  local m, args = s.meter, {}
  if s.dq then args[#args + 1] = m; args[#args + 1] = show(s.qh, s.ql) end
  if s.dt then args[#args + 1] = m .. ':t'; args[#args + 1] = fmt('%d', s.t) end
  if s.dn > 0 then args[#args + 1] = m .. ':n'; args[#args + 1] = fmt('%d', math.min(EXACT, s.n0 + s.dn)) end
  if s.dr then args[#args + 1] = m .. ':r'; args[#args + 1] = show(s.rh, s.rl) end
  if s.drn > 0 then args[#args + 1] = m .. ':rn'; args[#args + 1] = fmt('%d', math.min(EXACT, s.rn0 + s.drn)) end
  if #args > 0 then
    call('HSET', s.key, unpack(args))
    touched[s.key] = sub(s.key, #base + 1, #base + 2) == 'm:' and month_ttl or hour_ttl
  end
end

local function chunked(cmd, key, list)
  for first = 1, #list, 1000 do call(cmd, key, unpack(list, first, math.min(#list, first + 999))) end
end
local pending = {}
for ukey, u in pairs(uniq) do
  if #u.add > 0 then chunked('SADD', u.skey, u.add); touched[u.skey] = month_ttl end
  local members = {}
  for _, m in ipairs(u.pf) do
    if type(m) == 'number' then pending[m] = u else members[#members + 1] = m end
  end
  if #members > 0 then chunked('PFADD', ukey, members) end
  touched[ukey] = month_ttl
end
for _, i in ipairs(deferred) do -- soft/no-limit unique meters: the count after each event
  local u, e = pending[i], events[i]
  if call('PFADD', u.key, e[8]) == 1 then u.cur = u.cur + 1 end
  local qh, ql = upair(u.cur)
  local seg = seg_of[i]
  local lh, ll = lim_h[seg][e[2]], lim_l[seg][e[2]]
  local code = (lh and gt(qh, ql, lh, ll)) and 'O' or 'A'
  out[i] = lh and (code .. show(qh, ql) .. out[i]) or (code .. out[i])
end
for hu, list in pairs(hu_members) do chunked('PFADD', hu, list); touched[hu] = hour_ttl end
for key, ttl in pairs(touched) do call('EXPIRE', key, ttl) end

local n_rows = #accepted_at
if ARGV[4] == '1' and n_rows > 0 then
  local blob = ARGV[9]
  if n_rows < nev then -- keep only the accepted events' lines
    local keep, rows, line, pos = {}, {}, 1, 1
    for _, i in ipairs(accepted_at) do keep[i] = true end
    while pos <= #blob do
      local stop = string.find(blob, '\n', pos, true)
      if keep[line] then rows[#rows + 1] = sub(blob, pos, stop) end
      pos = stop + 1
      line = line + 1
    end
    blob = table.concat(rows)
  end
  if call('EXISTS', KEYS[2]) == 0 then
    call('XGROUP', 'CREATE', KEYS[2], ARGV[7], '$', 'MKSTREAM')
  end
  local entry = { 'n', tostring(n_rows), 'rows', blob }
  if ARGV[14] and ARGV[14] ~= '' then entry[#entry + 1] = 'rid'; entry[#entry + 1] = ARGV[14] end
  if ARGV[15] and ARGV[15] ~= '' then entry[#entry + 1] = 'tp'; entry[#entry + 1] = ARGV[15] end
  call('XADD', KEYS[2], '*', unpack(entry))
end

local lines = { tostring(nseg) }
table.sort(used)
for _, seg in ipairs(used) do
  local parts = { seg .. ':' .. seg_head[seg] }
  for m, lh in pairs(lim_h[seg]) do
    parts[#parts + 1] = m .. '=' .. (lh and show(lh, lim_l[seg][m]) or '') .. '|' .. (hards[seg][m] and '1' or '0')
  end
  lines[#lines + 1] = table.concat(parts, ';')
end
lines[#lines + 1] = table.concat(out, ' ')
return table.concat(lines, '\n')
