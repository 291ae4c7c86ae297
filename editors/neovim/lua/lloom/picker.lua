--- The beam picker of :LLooMWeave: one line per beam, cut to the screen's width, so 28
--- beams never reach the `-- More --` pager.  Where vim.ui.select is Nvim's own (an
--- inputlist that pages), a floating list: j/k to move, <CR> (or the beam's number) to
--- insert, K to show the beam's tokens and their probabilities (q or <Esc> closes them),
--- q or <Esc> to cancel; those keys on its top border (0.7 and 0.8, which have no float
--- titles, get a one-line float there).  A beam the server ranks below beams scored
--- higher says why after its label ("· stops mid-phrase").
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

--- The title float over each float's border (0.7, 0.8), by the float it names.
local title_wins = {}

local function close(win)
  if not win then
    return
  end
  if api.nvim_win_is_valid(win) then
    api.nvim_win_close(win, true)
  end
  close(title_wins[win])
  title_wins[win] = nil
end

--- The title of a float over its top border, where Nvim has no float titles (0.7, 0.8):
--- a one-line float of its own, which the cursor cannot enter.  Closes with `win`.
local function border_title(win, title, zindex)
  vim.cmd('redraw') -- a float placed on `win` before `win` is drawn lands at the screen's top
  local text = beams.fit(' ' .. title .. ' ', math.max(1, api.nvim_win_get_width(win) - 2))
  local bufnr = api.nvim_create_buf(false, true)
  api.nvim_buf_set_lines(bufnr, 0, -1, false, { text })
  vim.bo[bufnr].modifiable, vim.bo[bufnr].bufhidden = false, 'wipe'
  local title_win = api.nvim_open_win(bufnr, false, {
    relative = 'win',
    win = win,
    row = -1,
    col = 1,
    width = vim.fn.strdisplaywidth(text),
    height = 1,
    style = 'minimal',
    focusable = false,
    zindex = zindex + 1,
  })
  vim.wo[title_win].winhighlight = 'Normal:FloatBorder'
  title_wins[win] = title_win
  return title_win
end

--- A float of `lines` at the editor's centre (or, with `anchor`, below the cursor), `filetype`
--- set, `title` on its top border; every line cut to the float's width with an ellipsis.
--- Returns its buffer and window.
local function open_float(lines, filetype, title, anchor)
  local width = 1
  for _, line in ipairs(lines) do
    width = math.max(width, vim.fn.strdisplaywidth(line))
  end
  local columns, rows = vim.o.columns, vim.o.lines - vim.o.cmdheight - 1
  width = math.max(
    math.min(width, columns - 4),
    math.min(vim.fn.strdisplaywidth(title) + 4, columns - 4)
  )
  local shown = {}
  for _, line in ipairs(lines) do
    table.insert(shown, beams.fit(line, width))
  end
  local bufnr = api.nvim_create_buf(false, true)
  api.nvim_buf_set_lines(bufnr, 0, -1, false, shown)
  local bo = vim.bo[bufnr]
  bo.modifiable, bo.bufhidden, bo.filetype = false, 'wipe', filetype
  local height = math.max(1, math.min(#lines, rows - 4))
  local config = {
    relative = 'editor',
    width = width,
    height = height,
    row = math.max(0, math.floor((rows - height) / 2) - 1),
    col = math.max(0, math.floor((columns - width) / 2)),
    style = 'minimal',
    border = 'rounded',
    zindex = 50,
  }
  if anchor then -- under the cursor's line of the list, over the rest of it
    config.relative, config.row, config.col, config.zindex = 'cursor', 1, 2, 60
    config.height = math.max(1, math.min(#lines, rows - 2))
  end
  local titles = vim.fn.has('nvim-0.9') == 1
  if titles then
    config.title = ' ' .. title .. ' '
  end
  local win = api.nvim_open_win(bufnr, anchor == nil, config)
  vim.wo[win].wrap = false
  vim.wo[win].cursorline = anchor == nil
  if not titles then
    border_title(win, title, config.zindex)
  end
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
        beams.quoted(token.text)
      )
    )
  end
  return lines
end

--- The highlight of a row's note.
local NOTE_HL = 'Comment'

--- The floating list: `on_choice(item, index)` once, with nil when cancelled.  Each row
--- is the beam's number, its bar, score and label (cut with an ellipsis to the float),
--- and the server's note where the beam sits below beams scored higher.
--- Returns the list's buffer and window.
function M.float(items, prompt, on_choice)
  local width = 1
  for i, item in ipairs(items) do
    local row = string.format('%2d ', i) .. item.label .. beams.note_suffix(item)
    width = math.max(width, vim.fn.strdisplaywidth(row))
  end
  width = math.min(width, vim.o.columns - 6)
  local lines = {}
  for i, item in ipairs(items) do
    table.insert(lines, string.format('%2d ', i) .. beams.row(item, width - 3))
  end
  local bufnr, win = open_float(lines, 'lloombeams', prompt)
  local ns = api.nvim_create_namespace('lloom_beams')
  for i, item in ipairs(items) do
    local note = beams.note_suffix(item)
    if note ~= '' and vim.endswith(lines[i], note) then
      api.nvim_buf_add_highlight(bufnr, ns, NOTE_HL, i - 1, #lines[i] - #note, -1)
    end
  end
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
  -- With a beam's tokens open, q and <Esc> close just those: the weave stays.
  for _, key in ipairs({ 'q', '<Esc>' }) do
    map(key, function()
      if detail and api.nvim_win_is_valid(detail) then
        close(detail)
        detail = nil
      else
        finish(nil)
      end
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
