-- tether.nvim user commands. Nothing starts until a command runs or
-- require('tether').setup() is called.
if vim.g.loaded_tether == 1 then
  return
end
vim.g.loaded_tether = 1

if vim.fn.has('nvim-0.10') ~= 1 then
  vim.api.nvim_echo({ { 'tether.nvim needs Neovim 0.10 or newer', 'WarningMsg' } }, true, {})
  return
end

local command = vim.api.nvim_create_user_command

command('Tether', function(a)
  require('tether').prompt(a.args)
end, { nargs = '*', desc = 'Tether: send a prompt (the current file as context)' })

command('TetherSelection', function(a)
  require('tether').prompt_selection(a.args, a.line1, a.line2)
end, { nargs = '*', range = true, desc = 'Tether: send a prompt with the selected lines as context' })

command('TetherCancel', function(a)
  require('tether').cancel({ all = a.bang })
end, { nargs = 0, bang = true, desc = 'Tether: cancel the running turn (! every turn)' })

command('TetherSessions', function(a)
  require('tether').sessions(a.args)
end, { nargs = '*', desc = 'Tether: pick a session (optionally matching a search)' })

command('TetherChat', function(a)
  require('tether').chat({ new = a.bang })
end, { nargs = 0, bang = true, desc = 'Tether: open the chat (! starts a new session)' })
