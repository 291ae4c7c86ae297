--- Where a weave happens, in the two units involved: Nvim's (0-based row, byte column)
--- and LSP's (line, character in the client's position encoding, UTF-16 unless the
--- server chose otherwise).
---
--- In Normal mode the story runs through the character under the cursor, as |p| puts
--- after it: the block cursor covers that character, and at the end of a line (where
--- prose is continued) this is the only way to reach the end.  In Insert mode the
--- story ends at the cursor.  Nvim's own code-action requests put an empty range
--- before the character under the cursor; code_action_params() moves it here, so
--- vim.lsp.buf.code_action() and :LLooMWeave weave at the same spot.
local api = vim.api

local M = {}

--- Bytes in the UTF-8 character whose first byte is `byte`.
local function char_bytes(byte)
  if byte < 0xC0 then
    return 1
  elseif byte < 0xE0 then
    return 2
  elseif byte < 0xF0 then
    return 3
  end
  return 4
end

--- The length of `text` in code units of `encoding` ('utf-8', 'utf-16' or 'utf-32').
function M.units(text, encoding)
  if encoding == 'utf-8' then
    return #text
  end
  local units, i = 0, 1
  while i <= #text do
    local len = char_bytes(text:byte(i))
    units = units + ((encoding == 'utf-16' and len == 4) and 2 or 1)
    i = i + len
  end
  return units
end

local function inserting()
  local mode = api.nvim_get_mode().mode
  return mode:sub(1, 1) == 'i' or mode:sub(1, 1) == 'R'
end

--- The byte column in `line` of the LSP `character` (code units of `encoding`); past the
--- end of the line is its end, and a unit inside a character is that character's start.
function M.byte_col(line, character, encoding)
  if encoding == 'utf-8' then
    return math.min(character, #line)
  end
  local units, i = 0, 1
  while i <= #line do
    local len = char_bytes(line:byte(i))
    local width = (encoding == 'utf-16' and len == 4) and 2 or 1
    if units + width > character then
      break
    end
    units = units + width
    i = i + len
  end
  return i - 1
end

--- An LSP position in a buffer as Nvim's (0-based row, byte column), clamped to the
--- buffer: a line past the last is the end of the last.
function M.from_lsp(bufnr, pos, encoding)
  local count = api.nvim_buf_line_count(bufnr)
  if pos.line >= count then
    local last = api.nvim_buf_get_lines(bufnr, count - 1, count, false)[1] or ''
    return count - 1, #last
  end
  local line = api.nvim_buf_get_lines(bufnr, pos.line, pos.line + 1, false)[1] or ''
  return pos.line, M.byte_col(line, pos.character, encoding)
end

--- The weave point in the current window: `{ line, character }` for the client's
--- encoding, plus the 0-based row and byte column.
function M.cursor(encoding)
  local row, col = unpack(api.nvim_win_get_cursor(0))
  row = row - 1
  local line = api.nvim_buf_get_lines(0, row, row + 1, false)[1] or ''
  if not inserting() and col < #line then
    col = col + char_bytes(line:byte(col + 1))
  end
  return { line = row, character = M.units(line:sub(1, col), encoding) }, row, col
end

--- After `text` was inserted at (row, col): put the cursor on its last character in
--- Normal mode (so the next weave continues it), or just after it in Insert mode.
function M.after_insert(row, col, text, insert_mode)
  local lines = vim.split(text, '\n', { plain = true })
  local end_row = row + #lines - 1
  local end_col = #lines == 1 and col + #lines[1] or #lines[#lines]
  if not insert_mode and end_col > 0 then
    local line = api.nvim_buf_get_lines(0, end_row, end_row + 1, false)[1] or ''
    end_col = math.min(end_col, #line) - 1
    -- Back from a UTF-8 continuation byte to the start of its character.
    while end_col > 0 and line:byte(end_col + 1) >= 0x80 and line:byte(end_col + 1) < 0xC0 do
      end_col = end_col - 1
    end
  end
  pcall(api.nvim_win_set_cursor, 0, { end_row + 1, math.max(end_col, 0) })
end

--- `params` of a textDocument/codeAction request, with an empty range at the start
--- of the character under the cursor (what Nvim sends in Normal mode) moved after
--- that character.  Any other range, or Insert mode, is left as it is.
function M.code_action_params(params, bufnr, encoding)
  local range = params.range
  if type(range) ~= 'table' or inserting() then
    return params
  end
  local current = api.nvim_get_current_buf()
  if bufnr ~= nil and bufnr ~= 0 and bufnr ~= current then
    return params
  end
  local s, e = range.start, range['end']
  if type(s) ~= 'table' or type(e) ~= 'table' then
    return params
  end
  if s.line ~= e.line or s.character ~= e.character then
    return params
  end
  encoding = encoding or 'utf-16'
  local row, col = unpack(api.nvim_win_get_cursor(0))
  local line = api.nvim_buf_get_lines(0, row - 1, row, false)[1] or ''
  if s.line ~= row - 1 or s.character ~= M.units(line:sub(1, col), encoding) then
    return params
  end
  local pos = M.cursor(encoding)
  local out = {}
  for key, value in pairs(params) do
    out[key] = value
  end
  out.range = { start = pos, ['end'] = vim.deepcopy(pos) }
  return out
end

M.inserting = inserting

return M
