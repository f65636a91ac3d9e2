--- :TetherSessions — stored sessions through `tether/sessions`, picked with
--- vim.ui.select and opened in the chat.
local client = require('tether.client')

local M = {}

--- "2025-09-30T12:34:56Z" → "2025-09-30 12:34".
local function short_time(s)
  if type(s) ~= 'string' then
    return ''
  end
  local d, t = s:match('^(%d%d%d%d%-%d%d%-%d%d)[T ](%d%d:%d%d)')
  return d and (d .. ' ' .. t) or s
end

--- How a session reads in the picker.
--- @param s table {id, title, parentId?, updatedAt, messageCount, snippet?}
--- @return string
function M.format(s)
  local line = ('%s%s  (%s, %d messages)'):format(
    (s.parentId and s.parentId ~= vim.NIL) and '↳ ' or '',
    s.title or s.id,
    short_time(s.updatedAt),
    tonumber(s.messageCount) or 0
  )
  if type(s.snippet) == 'string' and s.snippet ~= '' then
    line = line .. '  “' .. s.snippet:gsub('%s+', ' ') .. '”'
  end
  return line
end

--- Lists sessions (or searches them) and opens the chosen one in the chat.
--- @param query string|nil
function M.pick(query)
  query = query and vim.trim(query) or ''
  local params = { limit = 100 }
  if query ~= '' then
    params.query = query
  end
  client.request({
    method = 'tether/sessions',
    params = params,
    on_result = function(err, result)
      if err or type(result) ~= 'table' then
        vim.notify(
          'Tether: could not list sessions: ' .. (err and err.message or 'no result'),
          vim.log.levels.ERROR
        )
        return
      end
      local sessions = result.sessions or {}
      if #sessions == 0 then
        local msg = query ~= '' and ('Tether: no session mentions “' .. query .. '”.')
          or 'Tether: no sessions yet.'
        vim.notify(msg, vim.log.levels.INFO)
        return
      end
      vim.ui.select(sessions, {
        prompt = query ~= '' and ('Tether sessions matching “' .. query .. '”') or 'Tether sessions',
        kind = 'tether.session',
        format_item = M.format,
      }, function(choice)
        if choice then
          require('tether.chat').load_session(choice)
        end
      end)
    end,
  })
end

return M
