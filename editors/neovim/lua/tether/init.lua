--- tether.nvim: Tether, the coding agent that runs as a language server, in
--- Neovim 0.10+. See `:help tether`.
local config = require('tether.config')
local client = require('tether.client')

local M = {}

--- Configures the plugin and starts Tether for every filetype (or the
--- configured ones). Calling it again replaces the options.
--- @param opts tether.Options|nil
function M.setup(opts)
  if vim.fn.has('nvim-0.10') ~= 1 then
    vim.notify('tether.nvim needs Neovim 0.10 or newer.', vim.log.levels.ERROR)
    return
  end
  config.set(opts)
  client.setup()
end

--- The current file as context, when it is a file.
local function current_file_context(bufnr)
  if vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' then
    return nil
  end
  return { uri = vim.uri_from_bufnr(bufnr) }
end

local function ask(default, fn)
  vim.ui.input({ prompt = 'Tether: ', default = default }, function(text)
    if text and vim.trim(text) ~= '' then
      fn(text)
    end
  end)
end

--- Sends a prompt in the chat's session (`:Tether {prompt}`). Without text,
--- asks for it with vim.ui.input.
--- @param text string|nil
function M.prompt(text)
  local bufnr = vim.api.nvim_get_current_buf()
  local function go(t)
    local ctx
    if config.options.context_current_file then
      local c = current_file_context(bufnr)
      ctx = c and { c } or nil
    end
    require('tether.chat').send(t, ctx)
  end
  if not text or vim.trim(text) == '' then
    ask(nil, go)
  else
    go(text)
  end
end

--- Number of UTF-16 code units in the first `byte_col` bytes of `line`
--- (Tether speaks LSP's default position encoding).
local function utf16_col(line, byte_col)
  local s = line:sub(1, byte_col)
  if vim.fn.has('nvim-0.11') == 1 then
    return vim.str_utfindex(s, 'utf-16')
  end
  local _, u16 = vim.str_utfindex(s)
  return u16
end

--- The LSP range of lines `line1..line2` (1-based) of `bufnr`, narrowed to
--- the characters of the last visual selection when it was charwise and
--- covers the same lines.
--- @return lsp.Range
function M.selection_range(bufnr, line1, line2)
  local s = vim.api.nvim_buf_get_mark(bufnr, '<')
  local e = vim.api.nvim_buf_get_mark(bufnr, '>')
  local lines = vim.api.nvim_buf_get_lines(bufnr, line1 - 1, line2, false)
  local first, last = lines[1] or '', lines[#lines] or ''
  if vim.fn.visualmode() == 'v' and s[1] == line1 and e[1] == line2 then
    -- '> points at the first byte of the last selected character.
    local tail = last:sub(e[2] + 1)
    local char = tail:match('^[%z\1-\127\194-\244][\128-\191]*') or ''
    local end_byte = math.min(e[2] + #char, #last)
    if vim.o.selection == 'exclusive' then
      end_byte = math.min(e[2], #last)
    end
    return {
      start = { line = line1 - 1, character = utf16_col(first, s[2]) },
      ['end'] = { line = line2 - 1, character = utf16_col(last, end_byte) },
    }
  end
  return {
    start = { line = line1 - 1, character = 0 },
    ['end'] = { line = line2 - 1, character = utf16_col(last, #last) },
  }
end

--- Sends a prompt with lines `line1..line2` of the current buffer as context
--- (`:'<,'>TetherSelection {prompt}`).
--- @param text string|nil
--- @param line1 integer
--- @param line2 integer
function M.prompt_selection(text, line1, line2)
  local bufnr = vim.api.nvim_get_current_buf()
  local file = current_file_context(bufnr)
  if not file then
    vim.notify('Tether: :TetherSelection needs a file buffer.', vim.log.levels.WARN)
    return
  end
  file.range = M.selection_range(bufnr, line1, line2)
  local function go(t)
    require('tether.chat').send(t, { file })
  end
  if not text or vim.trim(text) == '' then
    ask(nil, go)
  else
    go(text)
  end
end

--- Cancels the chat's running turn; with `all`, every turn of every Tether
--- client (`:TetherCancel!`).
--- @param opts { all?: boolean }|nil
function M.cancel(opts)
  if opts and opts.all then
    for _, c in ipairs(vim.lsp.get_clients({ name = client.name })) do
      local params = { command = 'tether.cancel', arguments = {} }
      client.call(c, 'request', 'workspace/executeCommand', params, function() end)
    end
    return
  end
  require('tether.chat').cancel()
end

--- Lists sessions (most recent first), or those matching `query` (full-text
--- search over their messages), with vim.ui.select; the chosen one opens in
--- the chat and the next prompt continues it.
--- @param query string|nil
function M.sessions(query)
  require('tether.sessions').pick(query)
end

--- Opens the chat buffer; `new` starts a fresh session (`:TetherChat!`).
--- @param opts { new?: boolean }|nil
function M.chat(opts)
  local chat = require('tether.chat')
  if opts and opts.new then
    chat.new_session()
  end
  chat.open(true)
  local win = vim.api.nvim_get_current_win()
  pcall(vim.api.nvim_win_set_cursor, win, { vim.api.nvim_buf_line_count(0), 0 })
end

--- One line for the statusline ("" when idle), e.g.
--- `vim.o.statusline = '%f %= %{v:lua.require("tether").status()}'`.
--- @return string
function M.status()
  return require('tether.status').status()
end

--- The Tether client for the current buffer, if one runs.
--- @return vim.lsp.Client|nil
function M.get_client()
  return client.get()
end

return M
