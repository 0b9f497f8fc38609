-- wrk's share of bench/soak.sh: a fixed cycle of requests over TCP, authenticated reads (viewer,
-- operator and admin tokens), a wrong token, refused mutations (anonymous: 401, viewer: 403) and
-- requests that close their connection. graced closes the connection of every refused request, so
-- those reconnect too.
--
--   wrk -t2 -c12 -d600s -s bench/soak.lua URL -- BUDGET_PER_THREAD DONE_PREFIX VIEWER OPERATOR ADMIN BDF,BDF,...
--
-- Each thread stops after BUDGET_PER_THREAD answers and creates DONE_PREFIX.<n>; soak.sh then ends
-- wrk with SIGINT (a stopped thread does not end wrk before its -d). done() prints the answers by
-- status as one line: `statuses=200:N,401:N,...`.
local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   budget = tonumber(args[1])
   done_prefix = args[2]
   local viewer, operator, admin = args[3], args[4], args[5]
   local gpus = {}
   for bdf in string.gmatch(args[6], "[^,]+") do table.insert(gpus, bdf) end
   local wrong = "grace_" .. string.rep("0", 64)
   local function get(path, token, close)
      local headers = {}
      if token then headers["Authorization"] = "Bearer " .. token end
      if close then headers["Connection"] = "close" end
      return wrk.format("GET", path, headers)
   end
   local function post(path, token)
      local headers = { ["Content-Type"] = "application/json" }
      if token then headers["Authorization"] = "Bearer " .. token end
      return wrk.format("POST", path, headers, "{}")
   end
   local function gpu(n) return "/gpus/" .. gpus[(n - 1) % #gpus + 1] end
   -- 20 requests: 17 answered 200 (2 of them asking to close their connection), 2 with 401 and
   -- 1 with 403 (each closed by graced).
   requests = {
      get("/gpus", viewer),
      get(gpu(1), viewer),
      get("/gpus", viewer),
      get("/healthz", viewer),
      get(gpu(2), operator),
      get("/gpus", viewer),
      get(gpu(3), admin),
      get("/metrics", viewer),
      get("/gpus", viewer),
      get("/gpus", wrong),                     -- 401, connection closed
      get(gpu(4), viewer),
      get("/gpus", viewer, true),              -- Connection: close
      get("/jobs?limit=5", operator),
      post(gpu(1) .. "/reset", nil),           -- anonymous mutation: 401, connection closed
      get("/gpus", viewer),
      get(gpu(5), viewer),
      post(gpu(2) .. "/bind", viewer),         -- viewer mutation: 403, connection closed
      get("/audit?limit=5", admin),
      get(gpu(6), viewer, true),               -- Connection: close
      get("/healthz", admin),
   }
   statuses = {}
   answered = 0
   index = 0
   finished = false
end

function request()
   index = index % #requests + 1
   return requests[index]
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   answered = answered + 1
   if answered >= budget and not finished then
      finished = true
      local marker = io.open(done_prefix .. "." .. id, "w")
      if marker then marker:close() end
      wrk.thread:stop()
   end
end

function done(summary, latency, requests)
   local total = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do total[status] = (total[status] or 0) + n end
   end
   local keys = {}
   for status in pairs(total) do table.insert(keys, status) end
   table.sort(keys)
   local parts = {}
   for _, status in ipairs(keys) do table.insert(parts, status .. ":" .. total[status]) end
   io.write("statuses=" .. table.concat(parts, ",") .. "\n")
end
