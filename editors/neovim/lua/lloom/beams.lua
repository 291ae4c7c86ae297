--- Beams as picker rows, like the VS Code QuickPick: an eighth-block bar of each beam's
--- score relative to the best, the score, the server's label, then the joint
--- probability and every token with its probability.  Pure: no Nvim state.
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

local function token_cell(token)
  local text = vim.fn.json_encode(token.text or ''):sub(2, -2)
  return text .. ' ' .. M.percent(token.prob)
end

--- What a row shows of a beam: the server's label (which tells beams with a long
--- shared start apart), or the text to insert from a server too old to send one.
function M.text(beam)
  local text = M.visible(beam.label or beam.insertText or '')
  return text ~= '' and text or '(end of text)'
end

--- One row per beam, in the server's order (best first): `{ label, detail, beam }`.
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
      detail = table.concat(cells, '  ·  '),
      beam = beam,
    }
  end, beams)
end

--- vim.ui.select's format_item: the row and its token probabilities on one line.
function M.format_item(item)
  return item.label .. '   │ ' .. item.detail
end

return M
