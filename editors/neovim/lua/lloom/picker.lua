--- The beam picker of :LLooMWeave: one line per beam, cut to the screen's width, so 28
--- beams never reach the `-- More --` pager.  Where vim.ui.select is Nvim's own (an
--- inputlist that pages), a floating list: j/k to move, <CR> (or the beam's number) to
--- insert, K to show the beam's tokens and their probabilities, q or <Esc> to cancel.
--- Where a plugin replaced vim.ui.select (telescope, fzf-lua, dressing), that plugin,
--- with the same one-line rows; the `picker` option of setup() chooses.
local beams = require('lloom.beams')

local api = vim.api

local M = {}

--- Whether vim.ui.select is still Nvim's own, defined in its runtime's vim/ui.lua.
function M.builtin_select()
  local info = debug.getinfo(vim.ui.select, 'S')
  local source = info and info.source or ''
  return source:match('[/\\]vim[/\\]ui%.lua$') ~= nil
end

--- Which picker `kind` ('auto', 'float' or 'select') means now.
function M.choose(kind)
  if kind == 'float' or kind == 'select' then
    return kind
  end
  return M.builtin_select() and 'float' or 'select'
end

local function close(win)
  if win and api.nvim_win_is_valid(win) then
    api.nvim_win_close(win, true)
  end
end

--- A float of `lines` at the editor's centre (or, with `anchor`, below the cursor), `filetype`
--- set; returns its buffer and window.
local function open_float(lines, filetype, title, anchor)
  local bufnr = api.nvim_create_buf(false, true)
  api.nvim_buf_set_lines(bufnr, 0, -1, false, lines)
  local bo = vim.bo[bufnr]
  bo.modifiable, bo.bufhidden, bo.filetype = false, 'wipe', filetype
  local width = 1
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  local columns, rows = vim.o.columns, vim.o.lines - vim.o.cmdheight - 1
  width = math.max(math.min(width, columns - 4), math.min(#title + 2, columns - 4))
  local height = math.max(1, math.min(#lines, rows - 4))
  local config = {
    relative = 'editor',
    width = width,
    height = height,
    row = math.max(0, math.floor((rows - height) / 2) - 1),
    col = math.max(0, math.floor((columns - width) / 2)),
    style = 'minimal',
    border = 'rounded',
  }
  if anchor then -- under the cursor's line of the list, over the rest of it
    config.relative, config.row, config.col, config.zindex = 'cursor', 1, 2, 60
    config.height = math.max(1, math.min(#lines, rows - 2))
  end
  if vim.fn.has('nvim-0.9') == 1 then
    config.title = ' ' .. title .. ' '
  end
  local win = api.nvim_open_win(bufnr, anchor == nil, config)
  vim.wo[win].wrap = false
  vim.wo[win].cursorline = anchor == nil
  return bufnr, win
end

--- The detail lines of a beam: its text, its joint probability, then one token a line
--- with a bar and its probability.
function M.detail_lines(beam)
  local lines = {
    beams.visible(beam.insertText or ''),
    string.format('score %.2f  %s', tonumber(beam.score) or 0, beams.joint_text(beam.joint)),
  }
  for _, token in ipairs(beam.tokens or {}) do
    table.insert(
      lines,
      string.format(
        '%s %5s  %s',
        beams.bar(tonumber(token.prob) or 0, 8),
        beams.percent(token.prob),
        vim.fn.json_encode(token.text or '')
      )
    )
  end
  return lines
end

--- The floating list: `on_choice(item, index)` once, with nil when cancelled.
--- Returns the list's buffer and window.
function M.float(items, prompt, on_choice)
  local width = vim.o.columns - 6
  local lines = {}
  for i, item in ipairs(items) do
    table.insert(lines, beams.fit(string.format('%2d ', i) .. item.label, width))
  end
  local bufnr, win = open_float(lines, 'lloombeams', prompt)
  local detail, done = nil, false
  local function finish(index)
    if done then
      return
    end
    done = true
    close(detail)
    close(win)
    on_choice(index and items[index] or nil, index)
  end
  local function map(lhs, run)
    vim.keymap.set('n', lhs, run, { buffer = bufnr, nowait = true, desc = 'LLooM beams' })
  end
  map('<CR>', function()
    finish(api.nvim_win_get_cursor(win)[1])
  end)
  for _, key in ipairs({ 'q', '<Esc>' }) do
    map(key, function()
      finish(nil)
    end)
  end
  for n = 1, math.min(9, #items) do
    map(tostring(n), function()
      finish(n)
    end)
  end
  local detail_line = nil
  map('K', function()
    close(detail)
    detail_line = api.nvim_win_get_cursor(win)[1]
    local item = items[detail_line]
    local _, detail_win = open_float(M.detail_lines(item.beam), 'lloombeam', 'beam', win)
    detail = detail_win
  end)
  -- Leaving the list cancels it.  Nvim 0.7 fires WinLeave even for the K float it opens
  -- without entering, so what counts is where the cursor is once the events are done.
  api.nvim_create_autocmd({ 'BufLeave', 'WinLeave' }, {
    buffer = bufnr,
    callback = function()
      vim.schedule(function()
        if api.nvim_get_current_win() ~= win then
          finish(nil)
        end
      end)
    end,
  })
  -- Moving to another beam closes its tokens.  CursorMoved also comes after K itself
  -- (opening a float resets where Nvim last saw the cursor), on the same line.
  api.nvim_create_autocmd('CursorMoved', {
    buffer = bufnr,
    callback = function()
      local moved = api.nvim_win_get_cursor(win)[1] ~= detail_line
      if moved and detail and api.nvim_win_is_valid(detail) then
        close(detail)
        detail = nil
      end
    end,
  })
  return bufnr, win
end

--- Show `items` (lloom.beams rows) with the picker `kind`; `on_choice(item, index)`.
function M.pick(items, kind, on_choice)
  if M.choose(kind) == 'float' then
    M.float(items, 'LLooM beams: <CR> insert  K tokens  q cancel', on_choice)
    return
  end
  vim.ui.select(items, {
    prompt = 'LLooM beams',
    kind = 'lloom.beam',
    format_item = beams.format_item,
  }, on_choice)
end

return M
