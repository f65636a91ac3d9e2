--- Options of tether.nvim: the defaults, and the merged options in force.
--- See `:help tether-config`.
local M = {}

--- @class tether.ChatKeys
--- @field send string|false       normal mode: send the prompt below the last "## You"
--- @field send_insert string|false insert mode: the same
--- @field cancel string|false     cancel the running turn
--- @field close string|false      close the chat window

--- @class tether.Options
--- @field cmd string[]             how to start the server
--- @field root_markers string[]    files or directories that mark a workspace root
--- @field filetypes string[]|nil   attach only to these filetypes (nil: every filetype)
--- @field init_options table       sent verbatim as `initializationOptions`
--- @field lsp table                extra fields for the client config (on_attach, capabilities...)
--- @field lsp_api 'auto'|'config'|'start' how to auto-start: vim.lsp.config/enable (0.11) or vim.lsp.start
--- @field context_current_file boolean :Tether attaches the current file as context
--- @field approval { prompt_style: 'auto'|'multi_line'|'single_line' }
--- @field chat { position: string, size: number, keys: tether.ChatKeys, open_on_prompt: boolean }

--- @type tether.Options
M.defaults = {
  cmd = { 'tether' },
  root_markers = { '.git' },
  filetypes = nil,
  init_options = {},
  lsp = {},
  lsp_api = 'auto',
  context_current_file = true,
  approval = {
    prompt_style = 'auto',
  },
  chat = {
    position = 'right',
    size = 0.4,
    open_on_prompt = true,
    keys = {
      send = '<CR>',
      send_insert = '<C-s>',
      cancel = '<C-c>',
      close = 'q',
    },
  },
}

--- Deep merge where lists (cmd, root_markers, filetypes) are replaced, not
--- merged index by index (Neovim 0.10's vim.tbl_deep_extend merges them).
local function merge(base, over)
  if over == nil then
    return vim.deepcopy(base)
  end
  if type(base) ~= 'table' or type(over) ~= 'table' then
    return vim.deepcopy(over)
  end
  if (next(over) ~= nil and vim.islist(over)) or (next(base) ~= nil and vim.islist(base)) then
    return vim.deepcopy(over)
  end
  local out = vim.deepcopy(base)
  for k, v in pairs(over) do
    out[k] = merge(base[k], v)
  end
  return out
end

--- @type tether.Options
M.options = vim.deepcopy(M.defaults)

--- Replaces the options in force by the defaults merged with `opts`.
--- @param opts table|nil
function M.set(opts)
  if opts ~= nil and type(opts) ~= 'table' then
    error('tether.setup: expected a table of options, got ' .. type(opts), 2)
  end
  local o = merge(M.defaults, opts or {})
  local function expect(name, value, optional)
    if not (type(value) == 'table' or (optional and value == nil)) then
      error(('tether.setup: option %s must be a table, got %s'):format(name, type(value)), 3)
    end
  end
  expect('cmd', o.cmd)
  expect('root_markers', o.root_markers)
  expect('filetypes', o.filetypes, true)
  expect('init_options', o.init_options)
  expect('lsp', o.lsp)
  M.options = o
end

return M
