--- Tether's `window/showMessageRequest` (approvals) through vim.ui.select.
---
--- Neovim runs the handler of every server→client request inside a coroutine
--- (vim.lsp.rpc wraps the dispatch in coroutine.wrap; so does 0.10) and sends
--- whatever the handler finally returns as the response. The handler queues
--- the request, yields, and is resumed with the chosen action item (or vim.NIL
--- for a dismissed picker) from vim.ui.select's callback: the editor never
--- blocks, and pickers that answer later (telescope, fzf-lua, snacks...) work.
---
--- One dialog at a time: requests that arrive while a picker is open wait in a
--- FIFO queue, across all Tether clients.
local config = require('tether.config')

local M = {}

--- @class tether.ApprovalJob
--- @field params lsp.ShowMessageRequestParams
--- @field client_id integer
--- @field approval_id string|nil
--- @field resume fun(answer: any)
--- @field stale string|nil  why the server no longer waits for this answer

--- @type tether.ApprovalJob[]
local queue = {}
--- @type tether.ApprovalJob|nil
local current = nil

--- The approval id carried by the action items, if any.
local function approval_id_of(params)
  for _, a in ipairs(params.actions or {}) do
    if type(a) == 'table' and type(a.approvalId) == 'string' then
      return a.approvalId
    end
  end
end

--- The message folded onto one line, for pickers whose prompt is one line:
--- lines are trimmed, blank ones dropped, and joined with " · " (or a space
--- after a line that ends with a colon).
--- @param message string
--- @return string
function M.single_line(message)
  local out = ''
  for line in (message or ''):gmatch('[^\r\n]+') do
    line = vim.trim(line)
    if line ~= '' then
      if out == '' then
        out = line
      elseif out:sub(-1) == ':' then
        out = out .. ' ' .. line
      else
        out = out .. ' · ' .. line
      end
    end
  end
  return out
end

--- Whether vim.ui.select is still Neovim's own (inputlist, which shows a
--- multi-line prompt well) rather than a picker plugin's.
local function builtin_select()
  local info = debug.getinfo(vim.ui.select, 'S')
  return info ~= nil and type(info.source) == 'string' and info.source:find('vim/ui%.lua$') ~= nil
end

--- The prompt shown with the actions.
--- @param message string
--- @return string
function M.prompt(message)
  local style = config.options.approval.prompt_style
  if style == 'auto' then
    style = builtin_select() and 'multi_line' or 'single_line'
  end
  if style == 'multi_line' then
    return (message or ''):gsub('%s+$', '') .. '\n'
  end
  return M.single_line(message)
end

local show_next

--- Ends the open dialog with `answer` and shows the next one.
local function finish(job, answer)
  if current ~= job then
    return
  end
  current = nil
  -- Resume from the main loop: with the builtin (synchronous) vim.ui.select
  -- the callback runs before the handler has yielded.
  vim.schedule(function()
    if job.stale == 'client_exited' then
      show_next()
      return
    end
    local ok, err = pcall(job.resume, answer)
    if not ok then
      vim.notify('Tether: could not send the approval answer: ' .. tostring(err), vim.log.levels.ERROR)
    end
    show_next()
  end)
end

show_next = function()
  if current then
    return
  end
  local job = table.remove(queue, 1)
  while job and job.stale do
    -- The server stopped waiting before the dialog could be shown.
    pcall(job.resume, vim.NIL)
    job = table.remove(queue, 1)
  end
  if not job then
    return
  end
  current = job
  local params = job.params
  local opts = {
    prompt = M.prompt(params.message),
    kind = job.approval_id and 'tether.approval' or 'tether.message',
    format_item = function(action)
      return (tostring(action.title or ''):gsub('[\r\n]+', ' '))
    end,
    -- For pickers that want more than a prompt (previews, per-kind layouts).
    tether = { message = params.message, approval_id = job.approval_id, type = params.type },
  }
  local answered = false
  if builtin_select() then
    -- Neovim's own select blocks in inputlist(): nothing is redrawn until it
    -- is answered (updates wait in the queue). Draw the chat as it is now,
    -- with the tool call and the approval being asked, before it blocks.
    pcall(vim.cmd, 'redraw')
  end
  local ok, err = pcall(vim.ui.select, params.actions or {}, opts, function(choice)
    if answered then
      return
    end
    answered = true
    finish(job, choice == nil and vim.NIL or choice)
  end)
  if not ok then
    vim.notify(
      'Tether: vim.ui.select failed, so the approval was denied: ' .. tostring(err),
      vim.log.levels.ERROR
    )
    answered = true
    finish(job, vim.NIL)
  end
end

--- Handler for `window/showMessageRequest` from the Tether client.
--- @param params lsp.ShowMessageRequestParams
--- @param ctx lsp.HandlerContext
function M.handler(_, params, ctx)
  local co, is_main = coroutine.running()
  if not co or is_main then
    -- Not reachable on 0.10+ (requests are dispatched in a coroutine); never block.
    vim.notify(
      'Tether: cannot show an approval dialog from here, so it was denied:\n' .. tostring(params.message),
      vim.log.levels.WARN
    )
    return vim.NIL
  end
  table.insert(queue, {
    params = params,
    client_id = ctx.client_id,
    approval_id = approval_id_of(params),
    resume = function(answer)
      local ok, err = coroutine.resume(co, answer)
      if not ok then
        error(err, 0)
      end
    end,
  })
  show_next()
  return coroutine.yield()
end

--- Watches `approval` updates: a question the server stopped waiting for
--- (timed out, turn cancelled) is dropped from the queue, or, when it is on
--- screen, the person is told that the answer no longer counts.
--- @param u table tether/update params
--- @param client_id integer
function M.on_update(u, client_id)
  if u.kind ~= 'approval' or u.status == 'asked' then
    return
  end
  local function matches(job)
    return job.client_id == client_id and job.approval_id == u.approvalId
  end
  for _, job in ipairs(queue) do
    if matches(job) then
      job.stale = u.status
    end
  end
  if current and matches(current) and not current.stale then
    current.stale = u.status
    if u.status == 'timed_out' or u.status == 'denied' then
      vim.notify(
        ('Tether: the approval for `%s` is closed (%s: %s); your answer will be ignored.'):format(
          u.command or '?',
          u.status,
          u.reason or ''
        ),
        vim.log.levels.WARN
      )
    end
  end
  vim.schedule(show_next)
end

--- Forgets the questions of a client that exited.
--- @param client_id integer
function M.on_client_exit(client_id)
  for i = #queue, 1, -1 do
    if queue[i].client_id == client_id then
      table.remove(queue, i)
    end
  end
  if current and current.client_id == client_id then
    current.stale = 'client_exited'
  end
end

--- Number of dialogs open (0 or 1) and waiting, for tests and statuslines.
--- @return integer open, integer waiting
function M.pending()
  return current and 1 or 0, #queue
end

return M
