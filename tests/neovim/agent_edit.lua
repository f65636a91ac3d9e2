-- An agent edit to an open file, then what the person does next
-- (TETHER_TEST_ACTION): undo, save, save-all-and-quit, quit, discard,
-- reload. TETHER_TEST_CASE is `clean` (the buffer had no unsaved change) or
-- `dirty` (the person's own unsaved change on line 1, away from the edit).
--
-- Records the buffer and the disk after the edit and after the action, and
-- every timestamp check Neovim would have turned into a prompt: a
-- FileChangedShell autocommand replaces W11/W12 and fires whenever the file's
-- mtime differs from what the buffer read or wrote — the very condition that
-- makes `:w` ask "The file has been changed since reading it!!!".
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
local case = os.getenv('TETHER_TEST_CASE')
local action = os.getenv('TETHER_TEST_ACTION')
H.setup()
H.watch_turns()
H.result.case = case
H.result.action = action
H.result.changed_shell = {}
vim.api.nvim_create_autocmd('FileChangedShell', {
  callback = function(a)
    table.insert(H.result.changed_shell, { file = a.file, reason = vim.v.fcs_reason, during = H.step })
    -- Like answering W12's [O]K: keep the buffer as it is.
    vim.v.fcs_choice = ''
  end,
})

local path = vim.fs.joinpath(H.env.ws, 'src/lib.rs')
local function disk()
  local f = io.open(path, 'r')
  if not f then
    return vim.NIL
  end
  local s = f:read('*a')
  f:close()
  return s
end
local buf
local function snapshot(name)
  H.result[name] = {
    buffer = table.concat(vim.api.nvim_buf_get_lines(buf, 0, -1, false), '\n') .. '\n',
    disk = disk(),
    modified = vim.bo[buf].modified,
  }
end

buf = H.edit('src/lib.rs')
if case == 'dirty' then
  vim.api.nvim_buf_set_lines(buf, 0, 1, false, { '/// Adds two numbers (my unsaved note).' })
  -- Closes the undo block, as leaving Insert mode does for a person.
  vim.cmd('let &undolevels = &undolevels')
end
snapshot('before')

-- The model edits `a + b`, then runs `cat` on the file.
H.step = 'turn'
vim.cmd('Tether change the sum')
H.wait(30000, function()
  return #H.result.turns == 1
end, 'the turn to end')
H.result.chat_after = H.chat_lines()
snapshot('after_edit')

-- A timestamp check right after the edit: focus-in, :b and `:!` do the same.
H.step = 'checktime after edit'
vim.cmd('checktime')
snapshot('after_checktime')

--- Runs an Ex command; records its error (E37, E162...) instead of failing.
local function ex(cmd)
  local ok, err = pcall(vim.cmd, cmd)
  if not ok then
    H.result.errors = H.result.errors or {}
    table.insert(H.result.errors, { cmd = cmd, err = tostring(err) })
  end
  return ok
end

--- For commands that end Neovim: the result is written as it leaves.
local function on_leave()
  vim.api.nvim_create_autocmd('VimLeavePre', {
    callback = function()
      if H.step == 'end' then
        return
      end
      snapshot('at_exit')
      H.result.ok = true
      H.result.exited = true
      H.write()
    end,
  })
end

H.step = action
if action == 'undo' then
  vim.api.nvim_buf_call(buf, function()
    vim.cmd('silent normal! u')
  end)
  snapshot('after_undo')
  vim.cmd('checktime')
  snapshot('after_undo_checktime')
  ex('write')
  snapshot('after_undo_write')
elseif action == 'save' then
  ex('write')
  snapshot('after_action')
elseif action == 'wqa' or action == 'quit' or action == 'qa!' then
  on_leave()
  local cmd = ({ wqa = 'wqa', quit = 'qa', ['qa!'] = 'qa!' })[action]
  if not ex(cmd) then
    -- Refused, as it would be after the person's own unsaved edit.
    snapshot('after_action')
  end
elseif action == 'e!' then
  ex('edit!')
  snapshot('after_action')
elseif action == 'reload' then
  ex('checktime')
  snapshot('after_action')
else
  H.fail('unknown TETHER_TEST_ACTION ' .. tostring(action))
end
H.step = 'end'
vim.cmd('checktime')
H.done()
