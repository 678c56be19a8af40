-- wrk script for bench/vs_postgrest.py: the same operations, asked of either service.
--
--   wrk -t2 -c16 -d10s -s bench/workload.lua <base url> -- <flavor> <workload>
--
-- flavor: "ours" (the Tasks API) or "postgrest"; workload: "mixed" or one operation (list, get,
-- create, update, toggle, delete). BENCH_DATA names a Lua file (written by vs_postgrest.py)
-- returning the people of this run (200 people, or a single busy one): {users = {{id=, auth=, tasks={ids}}...}, deletable =
-- {{person, id}...}} (person: a position in users). Each request picks a person at random, but a
-- delete is made by the task's owner; tasks to delete are split between wrk's threads so no two
-- threads delete the same one. Any answer that is not a 2xx counts as an error.

-- The mixed workload's weights, in percent (a todo app reads more than it writes).
local MIX = {
  {"list", 30}, {"get", 30}, {"create", 10}, {"update", 10}, {"toggle", 10}, {"delete", 10},
}

local threads = {}
local thread_count = 0

function setup(thread)
  thread:set("thread_index", thread_count)
  thread_count = thread_count + 1
  table.insert(threads, thread)
end

local data, flavor, workload, deletable, next_deletable
-- Globals, not locals: done() reads them from each thread with thread:get().
errors, deletions_exhausted = 0, 0

function init(args)
  flavor, workload = args[1], args[2]
  data = dofile(os.getenv("BENCH_DATA"))
  math.randomseed(1000 + thread_index)
  local threads_total = tonumber(os.getenv("BENCH_THREADS"))
  deletable, next_deletable = {}, 1
  for position, pair in ipairs(data.deletable) do
    if position % threads_total == thread_index then
      table.insert(deletable, pair)
    end
  end
end

local function pick_operation()
  if workload ~= "mixed" then
    return workload
  end
  local roll = math.random(100)
  for _, entry in ipairs(MIX) do
    roll = roll - entry[2]
    if roll <= 0 then
      return entry[1]
    end
  end
  return "list"
end

local function take_deletable()
  local pair = deletable[next_deletable]
  next_deletable = next_deletable + 1
  if pair == nil then
    deletions_exhausted = deletions_exhausted + 1
  end
  return pair
end

-- A list asks both services for the same page: the first 20 tasks, newest first.
local PAGE = 20
local JSON = "application/json"
local OBJECT = "application/vnd.pgrst.object+json"

local function ours(operation, user, task)
  local base = "/api/" .. user.id .. "/tasks"
  local headers = {["Authorization"] = user.auth, ["Content-Type"] = JSON}
  if operation == "list" then
    return wrk.format("GET", base .. "?limit=" .. PAGE, headers)
  elseif operation == "get" then
    return wrk.format("GET", base .. "/" .. task, headers)
  elseif operation == "create" then
    return wrk.format("POST", base, headers, '{"title":"a new task"}')
  elseif operation == "update" then
    return wrk.format("PUT", base .. "/" .. task, headers,
      '{"title":"renamed","description":"changed"}')
  elseif operation == "toggle" then
    local completed = math.random(2) == 1 and "true" or "false"
    return wrk.format("PATCH", base .. "/" .. task .. "/complete", headers,
      '{"completed":' .. completed .. '}')
  else
    return wrk.format("DELETE", base .. "/" .. task, headers)
  end
end

local function postgrest(operation, user, task)
  -- One object in, one object out, as the Tasks API answers: PostgREST's object media type
  -- makes an update or delete that matched no row an error (406) instead of an empty 200.
  local headers = {
    ["Authorization"] = user.auth,
    ["Content-Type"] = JSON,
    ["Accept"] = OBJECT,
    ["Prefer"] = "return=representation",
  }
  local one = "/tasks?id=eq." .. task
  if operation == "list" then
    headers["Accept"] = JSON
    return wrk.format("GET",
      "/tasks?user_id=eq." .. user.id .. "&order=created_at.desc,id.desc&limit=" .. PAGE,
      headers)
  elseif operation == "get" then
    return wrk.format("GET", one, headers)
  elseif operation == "create" then
    return wrk.format("POST", "/tasks", headers,
      '{"user_id":"' .. user.id .. '","title":"a new task"}')
  elseif operation == "update" then
    return wrk.format("PATCH", one, headers, '{"title":"renamed","description":"changed"}')
  elseif operation == "toggle" then
    local completed = math.random(2) == 1 and "true" or "false"
    return wrk.format("PATCH", one, headers, '{"completed":' .. completed .. '}')
  else
    return wrk.format("DELETE", one, headers)
  end
end

function request()
  local operation = pick_operation()
  local user = data.users[math.random(#data.users)]
  local task = user.tasks[math.random(#user.tasks)]
  if operation == "delete" then
    local pair = take_deletable()
    if pair == nil then
      operation, task = "get", user.tasks[1] -- counted above: the run had too few to delete
    else
      user, task = data.users[pair[1]], pair[2]
    end
  end
  if flavor == "ours" then
    return ours(operation, user, task)
  end
  return postgrest(operation, user, task)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    errors = errors + 1
    if errors <= 3 then
      io.stderr:write("unexpected " .. status .. ": " .. string.sub(body, 1, 200) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local failed, exhausted = 0, 0
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("errors")
    exhausted = exhausted + thread:get("deletions_exhausted")
  end
  -- Socket errors and timeouts are failures too: a request that got no answer.
  local socket = summary.errors
  local lost = socket.connect + socket.read + socket.write + socket.timeout
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p99_ms": %.3f, '
      .. '"errors": %d, "socket_errors": %d, "deletions_exhausted": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed, lost, exhausted))
end
