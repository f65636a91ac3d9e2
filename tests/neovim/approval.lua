-- The model asks to run a dangerous command: Tether's approval shows up in
-- vim.ui.select with everything the person needs to decide, and the answer
-- ($TETHER_TEST_CHOICE: an action title, or "dismiss") goes back to Tether.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()
H.watch_turns()
local keys = H.env.choice:match('^keys:(.*)$')
if keys then
  -- Neovim's own vim.ui.select (inputlist) reads the typed answer.
  vim.api.nvim_feedkeys(keys, 't', false)
else
  H.record_select(function(items)
    if H.env.choice == 'dismiss' then
      return nil
    end
    return H.item(items, H.env.choice)
  end)
end

H.edit('README.md')
vim.cmd('Tether clean the build')
H.wait(30000, function()
  return #H.result.turns == 1
end, 'the turn to end')
H.result.pending_after = { require('tether.approval').pending() }
H.done()
