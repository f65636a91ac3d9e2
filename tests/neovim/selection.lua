-- :'<,'>TetherSelection sends the selected lines (the editor's unsaved
-- text) as context; a charwise selection is measured in UTF-16.
local H = dofile(vim.fs.joinpath(vim.fs.dirname(arg[0]), 'helper.lua'))
H.setup()
H.watch_turns()

-- "h|éllo 😀| wörld": select from é to 😀, charwise.
local ubuf = H.edit('src/unicode.txt')
vim.cmd('normal! gg0lv5l\27')
local r = require('tether').selection_range(ubuf, 1, 1)
H.result.charwise = r

H.edit('src/lib.rs')
vim.api.nvim_buf_set_lines(0, 1, 2, false, { 'pub fn add(a: i32, b: i32) -> i32 { // unsaved edit' })
vim.cmd('normal! 2GVj\27')
vim.cmd("'<,'>TetherSelection explain this")
H.wait(20000, function()
  return #H.result.turns == 1
end, 'the turn to end')
H.done()
