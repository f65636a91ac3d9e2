-- Shared by the headless Neovim scenarios of tests/neovim.rs.
--
-- A scenario loads tether.nvim against the real tether binary and the
-- scripted model, drives it with user commands, waits on conditions (never on
-- fixed sleeps), and writes what it saw to $TETHER_TEST_RESULT as JSON for the
-- Rust side to assert on. Any failure exits non-zero (`cquit`).
local H = {}

local function env(name, required)
  local v = os.getenv(name)
  if required and (v == nil or v == '') then
    io.stderr:write('helper.lua: missing environment variable ' .. name .. '\n')
    vim.cmd('cquit 2')
  end
  return v
end

H.env = {
  bin = env('TETHER_TEST_BIN'),
  base_url = env('TETHER_TEST_BASE_URL'),
  data = env('TETHER_TEST_DATA'),
  ws = env('TETHER_TEST_WS'),
  result = env('TETHER_TEST_RESULT', true),
  plugin = env('TETHER_TEST_PLUGIN', true),
  choice = env('TETHER_TEST_CHOICE'),
  lsp_api = env('TETHER_TEST_LSP_API'),
  help_dir = env('TETHER_TEST_HELP_DIR'),
}

-- Everything the scenario saw; written as JSON at the end (or on failure).
H.result = { ok = false, notifications = {}, selects = {} }

function H.write()
  local f = assert(io.open(H.env.result, 'w'))
  f:write(vim.json.encode(H.result))
  f:close()
end

function H.fail(msg)
  H.result.ok = false
  H.result.error = msg
  H.result.chat = H.chat_lines()
  pcall(H.write)
  io.stderr:write('scenario failed: ' .. msg .. '\n')
  vim.cmd('cquit 1')
end

--- Waits until `pred()` holds; fails the scenario after `ms`.
function H.wait(ms, pred, what)
  if not vim.wait(ms, function()
    local ok, v = pcall(pred)
    return ok and v
  end, 10) then
    H.fail('timed out after ' .. ms .. ' ms waiting for ' .. what)
  end
end

function H.done()
  H.result.ok = true
  H.result.chat = H.chat_lines()
  H.write()
  vim.cmd('qall!')
end

-- New globals are recorded: the plugin must keep its state in its modules.
H.result.globals = {}
setmetatable(_G, {
  __newindex = function(t, k, v)
    table.insert(H.result.globals, tostring(k))
    rawset(t, k, v)
  end,
})

-- vim.notify is recorded (and still printed to stderr for the test log).
vim.notify = function(msg, level)
  table.insert(H.result.notifications, { msg = tostring(msg), level = level or vim.log.levels.INFO })
  io.stderr:write('notify[' .. tostring(level) .. ']: ' .. tostring(msg) .. '\n')
end

--- Loads the plugin the way a plugin manager would (rtp + plugin/), and
--- sets it up against the scripted model.
function H.setup(extra)
  for _, k in ipairs({ 'bin', 'base_url', 'data', 'ws' }) do
    if not H.env[k] then
      H.fail('helper.lua: H.setup needs env ' .. k)
    end
  end
  vim.opt.rtp:prepend(H.env.plugin)
  vim.cmd.runtime('plugin/tether.lua')
  local opts = {
    cmd = { H.env.bin },
    init_options = {
      model = 'scripted',
      baseUrl = H.env.base_url,
      dataDir = H.env.data,
      approval = { mode = 'ask', timeoutSecs = 60 },
    },
  }
  if H.env.lsp_api and H.env.lsp_api ~= '' then
    opts.lsp_api = H.env.lsp_api
  end
  require('tether').setup(vim.tbl_deep_extend('force', opts, extra or {}))
end

function H.chat_lines()
  local ok, st = pcall(function()
    return require('tether.chat').state()
  end)
  if not ok or not st.buf then
    return {}
  end
  return vim.api.nvim_buf_get_lines(st.buf, 0, -1, false)
end

--- The text under the last "## Tether" header.
function H.reply_text()
  local lines = H.chat_lines()
  local at
  for i = #lines, 1, -1 do
    if lines[i] == '## Tether' then
      at = i
      break
    end
  end
  if not at then
    return ''
  end
  return table.concat(vim.list_slice(lines, at + 1), '\n')
end

--- Records every `User TetherTurnEnd` into H.result.turns.
function H.watch_turns()
  H.result.turns = {}
  vim.api.nvim_create_autocmd('User', {
    pattern = 'TetherTurnEnd',
    callback = function(a)
      table.insert(H.result.turns, a.data)
    end,
  })
end

--- Replaces vim.ui.select (the default never answers in headless mode) with
--- a recorder that answers asynchronously, as picker plugins do:
--- `answer(items, opts)` returns the item to choose, or nil to dismiss.
function H.record_select(answer)
  H.open_selects = 0
  H.result.max_open_selects = 0
  vim.ui.select = function(items, opts, on_choice)
    local rec = {
      prompt = opts.prompt,
      kind = opts.kind,
      items = {},
      extra = opts.tether,
    }
    for _, it in ipairs(items) do
      table.insert(rec.items, opts.format_item and opts.format_item(it) or tostring(it))
    end
    table.insert(H.result.selects, rec)
    H.open_selects = H.open_selects + 1
    H.result.max_open_selects = math.max(H.result.max_open_selects, H.open_selects)
    vim.defer_fn(function()
      local choice = answer(items, opts, rec)
      rec.chosen = choice and (opts.format_item and opts.format_item(choice) or tostring(choice)) or vim.NIL
      H.open_selects = H.open_selects - 1
      on_choice(choice, nil)
    end, 50)
  end
end

--- The action item titled `title`, for record_select answers.
function H.item(items, title)
  for _, it in ipairs(items) do
    if it.title == title then
      return it
    end
  end
end

--- Opens a workspace file and waits until Tether is attached to it.
function H.edit(path)
  vim.cmd.edit(vim.fn.fnameescape(path))
  local buf = vim.api.nvim_get_current_buf()
  H.wait(15000, function()
    local c = vim.lsp.get_clients({ name = 'tether', bufnr = buf })[1]
    return c ~= nil and c.initialized
  end, 'tether to attach to ' .. path)
  return buf
end

return H
