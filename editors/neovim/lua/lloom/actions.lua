--- What the :LLooM* commands do: weave at the cursor and pick a beam, accept the best
--- beam (then cycle to the next), cancel, toggle automatic suggestions, and report the
--- client's status (for :LLooMInfo and for a statusline).  Everything goes through the
--- lloom-lsp client attached to the current buffer; the picker is lloom.picker: a
--- floating list, or vim.ui.select where a UI plugin (telescope, fzf-lua, dressing)
--- replaced it.
local beams = require('lloom.beams')
local client_mod = require('lloom.client')
local config = require('lloom.config')
local position = require('lloom.position')

local api = vim.api

local M = {}

local function notify(message, level)
  vim.notify('LLooM: ' .. message, level or vim.log.levels.INFO)
end

--- The lloom client of the current buffer, ready for requests; or nil, after telling why.
local function ready_client()
  local bufnr = api.nvim_get_current_buf()
  local client = client_mod.get(bufnr)
  if not client then
    notify('no lloom-lsp client is attached to this buffer (see :LLooMInfo)', vim.log.levels.WARN)
    return nil
  end
  if not client.initialized then
    notify('lloom-lsp is still starting; try again in a moment', vim.log.levels.WARN)
    return nil
  end
  return client, bufnr
end
M.ready_client = ready_client
M.notify = notify

local function remember(client, result)
  if type(result) == 'table' and type(result.speedLine) == 'string' and result.speedLine ~= '' then
    client_mod.state.last_weave[client.id] = result.speedLine
  end
end

local progress_count = 0

--- JSON-RPC's RequestCancelled: the weave was cancelled (:LLooMCancel, a newer weave).
local REQUEST_CANCELLED = -32800

--- Weave at the cursor through `lloom.weave`, with `$/progress` under a token of our
--- own (so :LLooMAccept and :LLooMWeave show progress in any progress UI) and an
--- echo while it runs.  `done(result, at)` runs with a result that has beams; `at` is
--- where it was woven.  `options`: lloom.weave's (`depth`, `after`, `fresh`, `deeper`).
local function weave_here(client, bufnr, what, done, options)
  local encoding = client.offset_encoding or 'utf-16'
  local pos, row, col = position.cursor(encoding)
  local at = {
    bufnr = bufnr,
    uri = vim.uri_from_bufnr(bufnr),
    pos = pos,
    row = row,
    col = col,
    insert_mode = position.inserting(),
  }
  progress_count = progress_count + 1
  local params = {
    command = 'lloom.weave',
    arguments = { at.uri, pos, options },
    workDoneToken = 'lloom-' .. what .. '-' .. progress_count,
  }
  api.nvim_echo({ { 'LLooM: weaving…' } }, false, {})
  client_mod.request(client, 'workspace/executeCommand', params, function(err, result)
    -- -32800 when this request was cancelled; a result with `cancelled` when something
    -- else stopped the weave (:LLooMCancel, a settings change)
    local stopped = type(result) == 'table' and result.cancelled
    if (err and err.code == REQUEST_CANCELLED) or stopped then
      api.nvim_echo({ { 'LLooM: weave cancelled' } }, false, {})
      return
    end
    if err or type(result) ~= 'table' then
      notify('weave failed: ' .. tostring(err and err.message or err), vim.log.levels.ERROR)
      return
    end
    remember(client, result)
    if not (result.beams or {})[1] then
      notify(
        'no beams here' .. (result.error and (': ' .. result.error) or ''),
        vim.log.levels.WARN
      )
      return
    end
    if result.speedLine then
      api.nvim_echo({ { 'LLooM: ' .. result.speedLine } }, false, {})
    end
    done(result, at)
  end, bufnr)
end

--- The last beam inserted from a weave, so :LLooMNext can put the next one in its place.
local last_insert = nil

--- Insert `beams[index]` at `at` through `lloom.accept` (the server checks the document
--- is still the one woven, then applies the edit and weaves the continuation ahead).
local function insert_beam(client, at, result, index)
  local beam = result.beams[index]
  local args = { at.uri, result.version, at.pos, beam.insertText }
  client_mod.execute(client, 'lloom.accept', args, function(err, answer)
    if err or type(answer) ~= 'table' then
      notify('accept failed: ' .. tostring(err and err.message), vim.log.levels.ERROR)
    elseif not answer.applied then
      notify('not inserted: ' .. tostring(answer.reason), vim.log.levels.WARN)
    else
      if api.nvim_get_current_buf() == at.bufnr then
        position.after_insert(at.row, at.col, beam.insertText, at.insert_mode)
      end
      last_insert = {
        at = at,
        beams = result.beams,
        index = index,
        text = beam.insertText,
        tick = api.nvim_buf_get_changedtick(at.bufnr),
      }
    end
  end, at.bufnr)
end

--- :LLooMWeave — weave at the cursor, show every beam (best first) with a bar, its
--- score and its label, one line each (lloom.picker: a floating list where K shows a
--- beam's tokens, or the vim.ui.select of a UI plugin), and insert the chosen one.
--- The same beams as vim.lsp.buf.code_action(): both weave at the
--- same spot (lloom.position), and the server keeps the weave for that story.
--- `options`: lloom.weave's.
function M.weave(options)
  local client, bufnr = ready_client()
  if not client then
    return
  end
  weave_here(client, bufnr, 'weave', function(result, at)
    local items = beams.items(result.beams)
    local kind = (client_mod.state.options or config.defaults).picker
    require('lloom.picker').pick(items, kind, function(choice, index)
      if choice then
        insert_beam(client, at, result, index or 1)
      end
    end)
  end, type(options) == 'table' and options or nil)
end

--- How many tokens :LLooMStep weaves without a count.
M.STEP = 4

--- :[N]LLooMStep — :LLooMWeave with beams `count` tokens long (default M.STEP).
function M.step(count)
  M.weave({ depth = count or M.STEP })
end

--- :LLooMAccept — insert the best beam of the weave at the cursor.  The server keeps
--- the last weave for this exact story, so after :LLooMWeave this costs no new weave.
function M.accept()
  local client, bufnr = ready_client()
  if not client then
    return
  end
  weave_here(client, bufnr, 'accept', function(result, at)
    insert_beam(client, at, result, 1)
  end)
end

--- :LLooMNext — put the next beam of the same weave in place of the one just inserted
--- by :LLooMAccept, :LLooMWeave or :LLooMNext (with a count, that many further; it
--- wraps).  Only while that insertion is still the buffer's last change.
function M.next_beam(count)
  count = count or vim.v.count1
  local last = last_insert
  local bufnr = api.nvim_get_current_buf()
  if not last or last.at.bufnr ~= bufnr or api.nvim_buf_get_changedtick(bufnr) ~= last.tick then
    notify('no beam just inserted here: :LLooMAccept or :LLooMWeave first', vim.log.levels.WARN)
    return false
  end
  local index = (last.index - 1 + count) % #last.beams + 1
  local text = last.beams[index].insertText
  local at = last.at
  local old = vim.split(last.text, '\n', { plain = true })
  local end_row = at.row + #old - 1
  local end_col = #old == 1 and at.col + #old[1] or #old[#old]
  api.nvim_buf_set_text(
    bufnr,
    at.row,
    at.col,
    end_row,
    end_col,
    vim.split(text, '\n', { plain = true })
  )
  position.after_insert(at.row, at.col, text, at.insert_mode)
  last.index, last.text, last.tick = index, text, api.nvim_buf_get_changedtick(bufnr)
  api.nvim_echo({ { string.format('LLooM: beam %d of %d', index, #last.beams) } }, false, {})
  return true
end

--- Run {command} (`lloom.weave`, `lloom.tree`) with `[uri, cursor, options?]` for the
--- current buffer's client: calls `callback(err, result, client)`.
function M.execute_at_cursor(command, callback, options)
  local client, bufnr = ready_client()
  if not client then
    return callback('no ready lloom-lsp client', nil)
  end
  local pos = position.cursor(client.offset_encoding or 'utf-16')
  local arguments = { vim.uri_from_bufnr(bufnr), pos }
  if options then
    table.insert(arguments, options)
  end
  client_mod.execute(client, command, arguments, function(err, result)
    callback(err, result, client)
  end, bufnr)
end

--- The weave result for the cursor, as `lloom.weave` returns it: calls
--- `callback(err, result)` with `{ beams, tree, stats, speedLine, version }`.
function M.weave_result(callback, options)
  M.execute_at_cursor('lloom.weave', function(err, result, client)
    remember(client, result)
    callback(err, result)
  end, options)
end

--- :LLooMCancel — stop the weaves in progress for this buffer (`lloom.cancel`).
function M.cancel(callback)
  local client, bufnr = ready_client()
  if not client then
    return
  end
  client_mod.execute(client, 'lloom.cancel', { vim.uri_from_bufnr(bufnr) }, function(err, result)
    if err then
      notify('cancel failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
    else
      local n = type(result) == 'table' and tonumber(result.cancelled) or 0
      api.nvim_echo({ { string.format('LLooM: %d weave(s) cancelled', n or 0) } }, false, {})
    end
    if callback then
      callback(err, result)
    end
  end, bufnr)
end

--- :LLooMToggle — turn automatic suggestions (`lloom.inline.automatic`: weave while
--- typing for Nvim 0.12's ghost text) on or off, for every client.  Returns the new value.
function M.toggle()
  local value = not config.value(require('lloom').settings(), 'lloom.inline.automatic')
  require('lloom').update_settings({ lloom = { inline = { automatic = value } } })
  notify('automatic suggestions ' .. (value and 'on' or 'off'))
  return value
end

--- The statusline state of a buffer: `{ state, message, last_weave, client_id }`,
--- where state is 'off' (no lloom client), 'starting', 'idle' (no weave yet, or the
--- settings changed since a failure), or the last `lloom/status`: 'weaving', 'done',
--- 'failed' or 'cancelled'.
function M.state(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local client = client_mod.get(bufnr)
  if not client then
    return { state = 'off', message = '' }
  end
  local out = { client_id = client.id, last_weave = client_mod.state.last_weave[client.id] }
  local entry = client_mod.state.status[vim.uri_from_bufnr(bufnr)]
  if not client.initialized then
    out.state, out.message = 'starting', ''
  elseif entry then
    out.state, out.message = entry.state, entry.message
  else
    out.state, out.message = 'idle', ''
  end
  return out
end

--- A statusline component: '' without a lloom client, else "LLooM: weaving…" (and what
--- the server is doing), the last speed line, or how the last weave ended.
function M.status(bufnr)
  local s = M.state(bufnr)
  if s.state == 'off' then
    return ''
  elseif s.state == 'weaving' then
    return 'LLooM: weaving…' .. (s.message ~= '' and (' ' .. s.message) or '')
  elseif s.state == 'done' then
    return 'LLooM: ' .. (s.message ~= '' and s.message or (s.last_weave or 'done'))
  elseif s.state == 'failed' then
    return 'LLooM: failed' .. (s.message ~= '' and (': ' .. s.message) or '')
  elseif s.state == 'starting' then
    return 'LLooM: starting'
  end
  local last = s.last_weave and (' (last: ' .. s.last_weave .. ')') or ''
  return 'LLooM' .. (s.state == 'cancelled' and ': cancelled' or '') .. last
end

local function client_state(client)
  if not client_mod.is_running(client) then
    return 'stopped'
  end
  return client.initialized and 'running' or 'starting'
end

--- What :LLooMInfo shows, as a table.
function M.info_table(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and api.nvim_get_current_buf() or bufnr
  local v = vim.version()
  local state = client_mod.state
  local client = client_mod.get(bufnr)
  local status = {
    nvim = string.format('%d.%d.%d', v.major, v.minor, v.patch),
    setup = state.options ~= nil,
    filetypes = (state.options or config.defaults).filetypes,
    clients = {},
  }
  for _, c in ipairs(client_mod.all()) do
    table.insert(status.clients, {
      id = c.id,
      state = client_state(c),
      root = c.config.root_dir,
      this_buffer = client ~= nil and c.id == client.id,
    })
  end
  local settings = state.settings
  if client then
    status.client = {
      id = client.id,
      state = client_state(client),
      root = client.config.root_dir,
      cmd = client.config.cmd,
      encoding = client.offset_encoding,
      version = client.server_info and client.server_info.version or nil,
    }
    status.last_weave = state.last_weave[client.id]
    settings = client.settings or client.config.settings or settings
  end
  status.settings = config.in_force(settings)
  return status
end

--- :LLooMInfo
function M.info()
  local s = M.info_table(0)
  local lines = { 'LLooM on Nvim ' .. s.nvim .. (s.setup and '' or ' (setup() not called)') }
  if s.client then
    local c = s.client
    table.insert(
      lines,
      string.format(
        'client %d: %s, root %s, %s positions',
        c.id,
        c.state,
        c.root or '(none)',
        tostring(c.encoding)
      )
    )
    table.insert(
      lines,
      'server: ' .. table.concat(c.cmd, ' ') .. (c.version and (' (' .. c.version .. ')') or '')
    )
    table.insert(lines, 'last weave: ' .. (s.last_weave or 'none yet'))
  else
    table.insert(
      lines,
      'no lloom-lsp client on this buffer (filetypes: ' .. table.concat(s.filetypes, ', ') .. ')'
    )
  end
  for _, c in ipairs(s.clients) do
    if not c.this_buffer then
      table.insert(
        lines,
        string.format('other client %d: %s, root %s', c.id, c.state, c.root or '(none)')
      )
    end
  end
  table.insert(lines, 'settings (* set by you, the rest are the server defaults):')
  for _, row in ipairs(s.settings) do
    table.insert(
      lines,
      string.format('  %s %s = %s', row.set and '*' or ' ', row.key, vim.inspect(row.value))
    )
  end
  api.nvim_echo({ { table.concat(lines, '\n') } }, false, {})
  return s
end

return M
