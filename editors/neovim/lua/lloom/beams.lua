--- Beams as picker rows, like the VS Code QuickPick: an eighth-block bar of each beam's
--- score relative to the best, the score and the server's label, on one line cut to the
--- screen's width; and as `detail`, the joint probability and every token with its
--- probability.
local M = {}

local BLOCKS = { '▏', '▎', '▍', '▌', '▋', '▊', '▉' }

--- A bar `width` cells wide, filled to `fraction` (clamped to 0..1) in eighths.
function M.bar(fraction, width)
  width = width or 10
  if type(fraction) ~= 'number' or fraction ~= fraction then
    fraction = 0
  end
  fraction = math.min(1, math.max(0, fraction))
  local eighths = math.floor(fraction * width * 8 + 0.5)
  local full, part = math.floor(eighths / 8), eighths % 8
  local cells = full + (part > 0 and 1 or 0)
  return string.rep('█', full)
    .. (part > 0 and BLOCKS[part] or '')
    .. string.rep('·', width - cells)
end

--- One line: newlines and tabs as visible symbols, so a row never wraps or hides text.
function M.visible(text)
  return (text:gsub('\r\n', '⏎'):gsub('[\r\n]', '⏎'):gsub('\t', '⇥'))
end

function M.percent(prob)
  local p = math.min(1, math.max(0, tonumber(prob) or 0)) * 100
  if p >= 99.5 then
    return '100%'
  elseif p >= 10 then
    return string.format('%.0f%%', p)
  elseif p >= 1 then
    return string.format('%.1f%%', p)
  end
  return string.format('%.2f%%', p)
end

function M.joint_text(joint)
  joint = tonumber(joint) or 0
  if joint >= 0.001 then
    return string.format('p=%.3f', joint)
  end
  return (string.format('p=%.1e', joint):gsub('e([-+])0*(%d)', 'e%1%2'))
end

--- A token quoted so that it reads as itself (“ whale”), a line break as ⏎: never an
--- escape, as the server's `tokenDetails` and VS Code show it.
function M.quoted(text)
  return '“' .. M.visible(text or '') .. '”'
end

local function token_cell(token)
  return M.quoted(token.text) .. ' ' .. M.percent(token.prob)
end

--- Why the server ranks a beam below beams scored higher (its `note`: 'stops
--- mid-phrase', 'repeats the story', 'cut short'), or '' for a beam nothing demoted.
function M.note(beam)
  return type(beam.note) == 'string' and M.visible(beam.note) or ''
end

--- What a row shows of a beam: the server's label (which tells beams with a long
--- shared start apart), or the text to insert from a server too old to send one.
function M.text(beam)
  local text = M.visible(beam.label or beam.insertText or '')
  return text ~= '' and text or '(end of text)'
end

--- One row per beam, in the server's order (best first): `{ label, note, detail, beam }`.
function M.items(beams, width)
  local best = 0
  for _, beam in ipairs(beams) do
    best = math.max(best, tonumber(beam.score) or 0)
  end
  return vim.tbl_map(function(beam)
    local score = tonumber(beam.score) or 0
    local cells = { M.joint_text(beam.joint) }
    for _, token in ipairs(beam.tokens or {}) do
      table.insert(cells, token_cell(token))
    end
    return {
      label = string.format(
        '%s %.2f  %s',
        M.bar(best > 0 and score / best or 0, width),
        score,
        M.text(beam)
      ),
      note = M.note(beam),
      detail = table.concat(cells, '  ·  '),
      beam = beam,
    }
  end, beams)
end

--- `text` cut to `width` display cells, its end an ellipsis where it was cut.
function M.fit(text, width)
  width = math.max(1, width)
  if vim.fn.strdisplaywidth(text) <= width then
    return text
  end
  local chars = vim.fn.strchars(text)
  local out = ''
  for n = 1, chars do
    local longer = vim.fn.strcharpart(text, 0, n)
    if vim.fn.strdisplaywidth(longer) > width - 1 then
      break
    end
    out = longer
  end
  return out .. '…'
end

--- What a row adds after the label for a beam with a note: '  · stops mid-phrase'.
function M.note_suffix(item)
  return (item.note or '') ~= '' and ('  · ' .. item.note) or ''
end

--- An item's row in `width` cells: its label, cut with an ellipsis where too long, then
--- its note (why it sits below beams scored higher), which the cut leaves whole.
function M.row(item, width)
  local note = M.note_suffix(item)
  local room = width - vim.fn.strdisplaywidth(note)
  if room < 16 then -- too narrow for the bar, the score and the note
    return M.fit(item.label, width)
  end
  return M.fit(item.label, room) .. note
end

--- How wide a picker row may be: the screen, less a picker's margins and numbering.
function M.row_width()
  return math.max(20, vim.o.columns - 10)
end

--- vim.ui.select's format_item: the row (bar, score, the beam's beginning, its note),
--- one line that fits the screen; the tokens' probabilities are the list's K (`detail`).
function M.format_item(item)
  return M.row(item, M.row_width())
end

return M
