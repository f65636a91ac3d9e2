--- The Tether language client: its config, auto-start (vim.lsp.config/enable
--- on 0.11, vim.lsp.start on 0.10), and a small request API that starts a
--- client for the current workspace when none runs yet.
local config = require('tether.config')
-- Loaded now so that its LspProgress listener exists before any client runs.
require('tether.status')

local M = {}

M.name = 'tether'

local has_011 = vim.fn.has('nvim-0.11') == 1

--- Calls a client method: `client:m(...)` on 0.11, `client.m(...)` on 0.10
--- (0.10's wrappers take no self; 0.11 deprecates the dot form).
--- @param client vim.lsp.Client
--- @param method string
local function call(client, method, ...)
  if has_011 then
    return client[method](client, ...)
  end
  return client[method](...)
end
M.call = call

local function call_user(cb, ...)
  if type(cb) == 'function' then
    cb(...)
  elseif type(cb) == 'table' then
    for _, f in ipairs(cb) do
      f(...)
    end
  end
end

--- Messages the server showed lately (window/showMessage), so that an error
--- it already showed is not notified twice.
--- @type { text: string, at: integer }[]
local shown = {}

--- Whether the server showed a message containing `text` in the last 10 s.
--- @param text string
--- @return boolean
function M.recently_shown(text)
  local now = vim.uv.now()
  for _, m in ipairs(shown) do
    if now - m.at < 10000 and m.text:find(text, 1, true) then
      return true
    end
  end
  return false
end

--- Handlers that only the Tether client uses.
local function handlers()
  return {
    ['window/showMessage'] = function(err, params, ctx, cfg)
      if type(params) == 'table' and type(params.message) == 'string' then
        table.insert(shown, { text = params.message, at = vim.uv.now() })
        if #shown > 20 then
          table.remove(shown, 1)
        end
      end
      return vim.lsp.handlers['window/showMessage'](err, params, ctx, cfg)
    end,
    -- Approvals: vim.ui.select, one at a time, answered asynchronously.
    ['window/showMessageRequest'] = function(...)
      return require('tether.approval').handler(...)
    end,
    -- Agent edits: applied without an echo, and saved when the buffer was
    -- clean before (docs/PROTOCOL.md, "Agent edits and open buffers").
    ['workspace/applyEdit'] = function(...)
      return require('tether.edits').handler(...)
    end,
    ['tether/update'] = function(_, params, ctx)
      if type(params) ~= 'table' then
        return
      end
      require('tether.status').on_update(params, ctx.client_id)
      require('tether.approval').on_update(params, ctx.client_id)
      require('tether.chat').on_update(params, ctx.client_id)
    end,
  }
end

local function on_exit(code, signal, client_id)
  require('tether.approval').on_client_exit(client_id)
  require('tether.status').on_client_exit(client_id)
  require('tether.chat').on_client_exit(client_id, code, signal)
end

--- The client config, as given to vim.lsp.config / vim.lsp.start.
--- @return vim.lsp.ClientConfig
function M.lsp_config()
  local o = config.options
  local cfg = vim.deepcopy(o.lsp)
  cfg.name = M.name
  cfg.cmd = vim.deepcopy(o.cmd)
  cfg.root_markers = vim.deepcopy(o.root_markers)
  cfg.filetypes = o.filetypes and vim.deepcopy(o.filetypes) or nil
  -- An empty Lua table would go out as a JSON array.
  cfg.init_options = next(o.init_options) ~= nil and vim.deepcopy(o.init_options) or nil
  cfg.handlers = vim.tbl_extend('force', handlers(), o.lsp.handlers or {})
  -- This client shows `tether/update` (docs/PROTOCOL.md): without the marker
  -- the server also writes `tether.ask` turns into a transcript file. It
  -- also saves agent edits into clean buffers (tether.edits).
  cfg.capabilities = vim.tbl_deep_extend(
    'force',
    vim.lsp.protocol.make_client_capabilities(),
    o.lsp.capabilities or {},
    { experimental = { tether = { updates = true, savesAgentEdits = true } } }
  )
  local user_exit = o.lsp.on_exit
  cfg.on_exit = function(code, signal, client_id)
    call_user(user_exit, code, signal, client_id)
    vim.schedule(function()
      on_exit(code, signal, client_id)
    end)
  end
  return cfg
end

--- The workspace root for a buffer: the nearest root marker, else the cwd.
--- @param bufnr integer
--- @return string
function M.root_for(bufnr)
  local ok, root = pcall(vim.fs.root, bufnr, config.options.root_markers)
  if ok and root then
    return root
  end
  return vim.fn.getcwd()
end

--- Config for an explicit vim.lsp.start: the root resolved here.
local function start_config(bufnr)
  local cfg = M.lsp_config()
  cfg.root_markers = nil
  cfg.root_dir = M.root_for(bufnr)
  return cfg
end

--- Starts (or reuses) the client for a file buffer (the 0.10 path).
--- @param bufnr integer
function M.start_for_buffer(bufnr)
  if not vim.api.nvim_buf_is_valid(bufnr) or vim.bo[bufnr].buftype ~= '' then
    return
  end
  local fts = config.options.filetypes
  if fts and not vim.tbl_contains(fts, vim.bo[bufnr].filetype) then
    return
  end
  vim.lsp.start(start_config(bufnr), { bufnr = bufnr })
end

--- Registers auto-start for every filetype (or the configured ones).
function M.setup()
  local method = config.options.lsp_api
  if method == 'auto' then
    method = (vim.lsp.config ~= nil and vim.lsp.enable ~= nil) and 'config' or 'start'
  end
  local group = vim.api.nvim_create_augroup('tether.autostart', { clear = true })
  if method == 'config' then
    vim.lsp.config(M.name, M.lsp_config())
    vim.lsp.enable(M.name)
    return
  end
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    callback = function(args)
      M.start_for_buffer(args.buf)
    end,
  })
  if vim.v.vim_did_enter == 1 then
    for _, buf in ipairs(vim.api.nvim_list_bufs()) do
      if vim.api.nvim_buf_is_loaded(buf) and vim.bo[buf].filetype ~= '' then
        M.start_for_buffer(buf)
      end
    end
  end
end

--- A running Tether client: the one attached to `bufnr`, else one whose root
--- is that buffer's root, else any.
--- @param bufnr integer|nil
--- @return vim.lsp.Client|nil
function M.get(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local function alive(list)
    return vim.tbl_filter(function(c)
      return not call(c, 'is_stopped')
    end, list)
  end
  local attached = alive(vim.lsp.get_clients({ name = M.name, bufnr = bufnr, _uninitialized = true }))
  if attached[1] then
    return attached[1]
  end
  local all = alive(vim.lsp.get_clients({ name = M.name, _uninitialized = true }))
  local root = M.root_for(bufnr)
  for _, c in ipairs(all) do
    if c.root_dir == root then
      return c
    end
  end
  return all[1]
end

--- A running client, started for the current workspace (without attaching
--- a buffer) when there is none.
--- @param bufnr integer|nil
--- @return vim.lsp.Client|nil, string|nil
function M.ensure(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local c = M.get(bufnr)
  if c then
    return c
  end
  local cfg = start_config(bufnr)
  local ok, id
  if has_011 then
    ok, id = pcall(vim.lsp.start, cfg, { attach = false })
  else
    ok, id = pcall(vim.lsp.start_client, cfg)
  end
  if not ok or not id then
    return nil,
      ('could not start `%s`%s; is Tether installed and on your PATH? (see :checkhealth tether)'):format(
        table.concat(cfg.cmd, ' '),
        ok and '' or (': ' .. tostring(id))
      )
  end
  return vim.lsp.get_client_by_id(id)
end

--- Runs `fn(client)` once the client has answered `initialize`.
--- @param client vim.lsp.Client
--- @param fn fun(client: vim.lsp.Client|nil, err: string|nil)
function M.when_ready(client, fn)
  local deadline = vim.uv.now() + 30000
  local function check()
    if client.initialized then
      fn(client)
    elseif call(client, 'is_stopped') or vim.uv.now() > deadline then
      fn(nil, 'the Tether server stopped before it was ready (see :LspLog)')
    else
      vim.defer_fn(check, 20)
    end
  end
  check()
end

--- Sends a request to the Tether client of the current workspace.
--- @class tether.RequestOpts
--- @field method string
--- @field params table
--- @field bufnr? integer      whose workspace's client (default: current buffer)
--- @field on_result fun(err: table|nil, result: any, client: vim.lsp.Client|nil)
--- @field on_sent? fun(client: vim.lsp.Client, request_id: integer)

--- @param opts tether.RequestOpts
function M.request(opts)
  local client, err = M.ensure(opts.bufnr)
  if not client then
    opts.on_result({ code = -32603, message = err })
    return
  end
  M.when_ready(client, function(c, why)
    if not c then
      opts.on_result({ code = -32603, message = why })
      return
    end
    local ok, id = call(c, 'request', opts.method, opts.params, function(e, result)
      opts.on_result(e, result, c)
    end)
    if not ok then
      opts.on_result({ code = -32603, message = 'the Tether server is not running' }, nil, c)
    elseif opts.on_sent then
      opts.on_sent(c, id)
    end
  end)
end

--- Sends a notification to a given client.
--- @param client vim.lsp.Client
--- @param method string
--- @param params table
--- @return boolean
function M.notify(client, method, params)
  return call(client, 'notify', method, params)
end

return M
