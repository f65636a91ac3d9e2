-- :help tether works: the tags build without errors, every |link| in the
-- doc resolves, and the commands and functions have their own tags.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
local dir = assert(H.env.help_dir, 'TETHER_TEST_HELP_DIR')
vim.opt.rtp:prepend(dir)
vim.cmd('helptags ' .. vim.fn.fnameescape(dir .. '/doc'))

vim.cmd('help tether')
H.result.help_file = vim.fn.fnamemodify(vim.api.nvim_buf_get_name(0), ':t')
H.result.help_line = vim.api.nvim_get_current_line()

local function resolves(tag)
  return #vim.fn.taglist('^' .. vim.fn.escape(tag, '\\.*$^~[]') .. '$') > 0
end
local unresolved = {}
for _, line in ipairs(vim.fn.readfile(dir .. '/doc/tether.txt')) do
  -- |links| outside of `code` and of example blocks' lines starting with space+>
  for link in line:gmatch('|([^|%s]+)|') do
    if not resolves(link) then
      table.insert(unresolved, link)
    end
  end
end
H.result.unresolved = unresolved

local missing = {}
for _, tag in ipairs({
  'tether.txt',
  ':Tether',
  ':TetherSelection',
  ':TetherCancel',
  ':TetherSessions',
  ':TetherChat',
  'tether.setup()',
  'tether.status()',
  'tether-config',
  'tether-approvals',
  'tether-chat',
}) do
  if not resolves(tag) then
    table.insert(missing, tag)
  end
end
H.result.missing = missing
H.done()
