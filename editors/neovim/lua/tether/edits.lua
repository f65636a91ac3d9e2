--- Agent edits into open buffers (`workspace/applyEdit`), the way the person
--- would make them (docs/PROTOCOL.md, "Agent edits and open buffers").
---
--- Tether never writes the disk behind an open buffer: an agent's edit comes
--- only through this request. When the buffer had no unsaved changes before
--- the edit, the plugin saves it (`:update`, before answering), so the
--- commands the agent runs next see it and the buffer and the file agree — `u`
--- then `:w` undoes it like the person's own saved edit, and no timestamp
--- prompt (W11/W12, "file has been changed since reading it") can appear,
--- since Neovim itself wrote the file. A buffer with the person's unsaved
--- changes is not saved (that would save their half-done text); the edit
--- stays in the buffer, unsaved, and Tether tells the model so.
---
--- Unlike Neovim's default handler, nothing is echoed ("Workspace edit …").
local M = {}

--- The label Tether gives an agent's file edit; its chat-file and transcript
--- writes carry another label and are never saved.
M.AGENT_LABEL = 'Tether: agent edit'

--- The loaded buffers a workspace edit touches.
--- @param edit table WorkspaceEdit
--- @return integer[]
local function touched(edit)
  local uris = {}
  for _, change in ipairs(edit.documentChanges or {}) do
    if change.textDocument and change.textDocument.uri then
      table.insert(uris, change.textDocument.uri)
    end
  end
  for uri in pairs(edit.changes or {}) do
    table.insert(uris, uri)
  end
  local bufs = {}
  for _, uri in ipairs(uris) do
    local ok, fname = pcall(vim.uri_to_fname, uri)
    local buf = ok and vim.fn.bufnr(fname) or -1
    if buf ~= -1 and vim.api.nvim_buf_is_loaded(buf) then
      table.insert(bufs, buf)
    end
  end
  return bufs
end

--- Saves `buf` as `:update` would, quietly; returns an error text or nil.
--- @param buf integer
--- @return string|nil
local function save(buf)
  local ok, err = pcall(vim.api.nvim_buf_call, buf, function()
    vim.cmd('silent keepalt keepjumps update')
  end)
  if not ok then
    return tostring(err)
  end
  if vim.bo[buf].modified then
    return 'the buffer is still modified after :update'
  end
end

--- The `workspace/applyEdit` handler of the Tether client.
--- @param params table ApplyWorkspaceEditParams
--- @param ctx table
--- @return table ApplyWorkspaceEditResult
function M.handler(_, params, ctx)
  if type(params) ~= 'table' or type(params.edit) ~= 'table' then
    return { applied = false, failureReason = 'workspace/applyEdit without an edit' }
  end
  local client = vim.lsp.get_client_by_id(ctx.client_id)
  if not client then
    return { applied = false, failureReason = 'the Tether client is gone' }
  end
  local agent = params.label == M.AGENT_LABEL
  -- Buffers that were clean before the edit: saved after it.
  local clean = {}
  if agent then
    for _, buf in ipairs(touched(params.edit)) do
      if not vim.bo[buf].modified and vim.bo[buf].buftype == '' then
        table.insert(clean, buf)
      end
    end
  end
  local ok, err = pcall(vim.lsp.util.apply_workspace_edit, params.edit, client.offset_encoding)
  if not ok then
    return { applied = false, failureReason = tostring(err) }
  end
  for _, buf in ipairs(clean) do
    if vim.api.nvim_buf_is_valid(buf) and vim.bo[buf].modified then
      local why = save(buf)
      if why then
        -- Applied, not saved: Tether sees the disk differ and tells the model.
        vim.notify(
          ('Tether: could not save %s after the agent edit: %s'):format(vim.api.nvim_buf_get_name(buf), why),
          vim.log.levels.WARN
        )
      end
    end
  end
  return { applied = true }
end

return M
