--- Ghost text on Nvim 0.12+ (vim.lsp.inline_completion): the keys that accept it
--- (whole, a word, a line), ask for it, and cycle through the beams.
---
--- Read from Nvim's runtime/lua/vim/lsp/inline_completion.lua (0.12): Nvim sends only
--- automatic requests (triggerKind 2) on InsertEnter, CursorMovedI and TextChangedP,
--- 200 ms after the last; `get({ on_accept })` accepts the shown candidate and returns
--- true, or returns false when none is shown; `select({ count })` shows another one.
--- With `lloom.inline.automatic` off the server answers automatic requests only from
--- its cache, so when nothing is shown the accept key weaves (`lloom.weave`) and then
--- runs the inline-completion autocommands of the buffer (augroup
--- `nvim.lsp.inline_completion:<bufnr>`), whose request the cache now answers.
local client_mod = require('lloom.client')
local position = require('lloom.position')

local api = vim.api

local M = {}

--- Buffers with a weave asked for by the accept key: bufnr -> the changedtick then.
M.asking = {}
--- Where the last asked-for weave found no beams: bufnr -> changedtick.
M.empty_at = {}

local function keys(key)
  return key or ''
end

--- The part of `text` that `part` accepts: 'all'; 'word' (leading spaces and one word,
--- or one run of punctuation); 'line' (up to and including the next line break, or
--- all of it).
function M.part_of(text, part)
  if part == 'word' then
    local word = text:match('^%s*[%w\128-\255_]+') or text:match('^%s*[^%s%w\128-\255_]+')
    return word or text
  elseif part == 'line' then
    local line = text:match('^[^\n]*\n') or text
    -- A beam starting with a line break accepts that line break and the line after it.
    if line == '\n' then
      line = text:match('^\n[^\n]*') or line
    end
    return line
  end
  return text
end

--- Insert `text` where the candidate `item` goes (its range start, or the cursor),
--- and leave the cursor after it.
local function insert(bufnr, item, text)
  local row, col
  if item.range and item.range.start then
    row, col = item.range.start.row, item.range.start.col
  else
    row, col = unpack(api.nvim_win_get_cursor(0))
    row = row - 1
  end
  local lines = vim.split(text, '\n', { plain = true })
  api.nvim_buf_set_text(bufnr, row, col, row, col, lines)
  local end_col = (#lines == 1 and col or 0) + #lines[#lines]
  pcall(api.nvim_win_set_cursor, 0, { row + #lines, end_col })
end

--- Run the buffer's inline-completion autocommands, so Nvim asks again now.
function M.refresh(bufnr)
  local group = 'nvim.lsp.inline_completion:' .. bufnr
  local ok = pcall(api.nvim_exec_autocmds, 'CursorMovedI', { group = group, buffer = bufnr })
  if not ok then
    pcall(api.nvim_exec_autocmds, 'CursorMovedI', { buffer = bufnr })
  end
end

--- Weave at the cursor for ghost text; when the beams are back and the buffer has not
--- changed, ask Nvim to show them (from the server's cache).
function M.ask(bufnr, client)
  local tick = api.nvim_buf_get_changedtick(bufnr)
  M.asking[bufnr] = tick
  local pos = position.cursor(client.offset_encoding or 'utf-16')
  local uri = vim.uri_from_bufnr(bufnr)
  client_mod.execute(client, 'lloom.weave', { uri, pos }, function(err, result)
    M.asking[bufnr] = nil
    if not api.nvim_buf_is_valid(bufnr) or api.nvim_buf_get_changedtick(bufnr) ~= tick then
      return
    end
    if err or type(result) ~= 'table' or not (result.beams or {})[1] then
      M.empty_at[bufnr] = tick
      return
    end
    M.refresh(bufnr)
  end, bufnr)
end

--- An `expr` mapping's answer: accept the shown ghost text (`part`: 'all', 'word' or
--- 'line') and return ''; with none shown, weave for it and return ''; return `key`
--- (so the key does what it does without the plugin) when there is nothing to accept:
--- no Nvim 0.12 inline completion, no ready lloom client, or a weave here just found
--- no beams.  While a weave asked for here runs, the key does nothing.
function M.accept(part, key)
  local ic = client_mod.inline_completion()
  local bufnr = api.nvim_get_current_buf()
  local client = client_mod.get(bufnr)
  if not ic or not client then
    return keys(key)
  end
  local opts = nil
  if part ~= 'all' then
    opts = {
      on_accept = function(item)
        local text = item.insert_text
        text = type(text) == 'table' and text.value or text
        local piece = M.part_of(text or '', part)
        insert(bufnr, item, piece)
        if piece ~= text then
          -- The rest of the beam is not cached for the longer story: weave it.
          M.ask(bufnr, client)
        end
      end,
    }
  end
  if ic.get(opts) then
    return ''
  end
  local tick = api.nvim_buf_get_changedtick(bufnr)
  if not client.initialized or M.empty_at[bufnr] == tick then
    return keys(key)
  end
  if M.asking[bufnr] == nil then
    -- An expr mapping may not change text or windows; the request waits a tick.
    vim.schedule(function()
      if api.nvim_buf_is_valid(bufnr) then
        M.ask(bufnr, client)
      end
    end)
  end
  return ''
end

--- An `expr` mapping's answer: show the beam `count` away as ghost text (it wraps);
--- `key` when no lloom client or no inline completion.
function M.cycle(count, key)
  local ic = client_mod.inline_completion()
  if not ic or type(ic.select) ~= 'function' or not client_mod.get(0) then
    return keys(key)
  end
  vim.schedule(function()
    pcall(ic.select, { count = count })
  end)
  return ''
end

return M
