--- A weave's token tree (the json of the server's `lloom.tree`) as lines of text: one
--- line per phrase (a chain of single-child tokens, as on the edges of LLooM's graph),
--- in the tree's own order (a phrase, then its children's subtrees), each indented by
--- its level and showing a bar of its first token's probability, the probability, the
--- phrase, and on a leaf where its beam ended.  Also the fold level of every line, so
--- each branch (a subtree whose parent splits) folds on its own.  Pure: no Nvim state.
local beams = require('lloom.beams')

local M = {}

--- Cells of the probability bar.
M.BAR_WIDTH = 8

--- How many characters of the story's end the root line shows.
M.STORY_TAIL = 30

--- A phrase as it reads: line breaks as ⏎ and tabs as ⇥ (as the server's views show
--- them), quotes and backslashes as typed; a phrase of spaces alone as middle dots.
function M.token_text(text)
  local shown = beams.visible(text or '')
  if shown ~= '' and not shown:find('[^ ]') then
    return (shown:gsub(' ', '·'))
  end
  return shown
end

--- A node's finish reason, or nil ("stop", "depth", "end", "cut"; null in JSON).
function M.finish(node)
  local finish = node.finish
  if type(finish) == 'string' and finish ~= '' then
    return finish
  end
  return nil
end

--- Whether `node` has children.
function M.inner(node)
  return type(node.children) == 'table' and node.children[1] ~= nil
end

local function story_tail(prompt)
  prompt = beams.visible(prompt or '')
  local chars = vim.fn.strchars(prompt)
  if chars > M.STORY_TAIL then
    prompt = '…' .. vim.fn.strcharpart(prompt, chars - M.STORY_TAIL)
  end
  return M.token_text(prompt)
end

--- The root's line: the end of the story woven from.
function M.root_line(tree)
  return 'story ' .. story_tail(tree.prompt)
end

--- How many levels deep the indent goes; deeper phrases stay at this indent, so a deep
--- tree still fits an 80-column split (a vertical split of it: 40 columns).
M.MAX_INDENT_LEVELS = 6

--- The keys, as the tree buffer's last lines: each fits a 40-column window.
M.LEGEND = {
  '<CR> insert leaf / weave on',
  'a insert   w weave on',
  '[N]s step N tokens',
  '<BS> back   r again   q close',
}

--- A phrase: `node` and the single-child tokens below it, up to the first node that
--- ends a beam or splits.  Returns its last node, its text, and the probability of its
--- first token: the branch taken where its parent splits.  (The phrase's joint
--- probability reads 0.00% on any phrase of some length, and tells siblings apart no
--- better.)
function M.phrase(node)
  local texts, prob, last = {}, tonumber(node.prob) or 0, node
  while true do
    table.insert(texts, last.text or '')
    local children = M.inner(last) and last.children or {}
    if #children ~= 1 or M.finish(last) then
      break
    end
    last = children[1]
  end
  return last, table.concat(texts), prob, #texts
end

--- A phrase's line: indent, bar, probability (its first token's), the phrase,
--- `[finish]` where a beam ends (alone after the probability on an empty leaf: the
--- model's end of text right there).
function M.phrase_line(text, prob, finish, level)
  local phrase = M.token_text(text)
  local line = string.rep('  ', math.min(level, M.MAX_INDENT_LEVELS))
    .. beams.bar(prob, M.BAR_WIDTH)
    .. string.format(' %4s  ', beams.percent(prob))
    .. phrase
  if finish then
    line = line .. (phrase ~= '' and '  ' or '') .. '[' .. finish .. ']'
  end
  return line
end

--- The tree as `{ lines, nodes, depths, folds }`, all indexed by line (1-based): the
--- text, the json node its phrase ends at (nil on the story, speed and key lines), its
--- level (the root's is 0), and its 'foldexpr' level.  A chain of single-child tokens
--- is one line, a phrase, as on the edges of LLooM's graph; a fold starts at every
--- phrase whose parent splits and covers its subtree, so `zc` closes the branch the
--- cursor is on.  Below the tree: the speed line and the keys.
function M.layout(tree, speed_line)
  local out = { lines = {}, nodes = {}, depths = {}, folds = {} }
  local function line(text, node, level, fold)
    table.insert(out.lines, text)
    out.nodes[#out.lines] = node
    table.insert(out.depths, level)
    table.insert(out.folds, fold)
  end
  local function add(node, level, fold_level, starts)
    local last, text, prob = M.phrase(node)
    line(
      M.phrase_line(text, prob, M.finish(last), level),
      last,
      level,
      starts and ('>' .. fold_level) or fold_level
    )
    local children = M.inner(last) and last.children or {}
    local splits = #children > 1
    for _, child in ipairs(children) do
      add(child, level + 1, splits and fold_level + 1 or fold_level, splits)
    end
  end
  line(M.root_line(tree), tree.root, 0, 0)
  local children = M.inner(tree.root) and tree.root.children or {}
  for _, child in ipairs(children) do
    add(child, 1, #children > 1 and 1 or 0, #children > 1)
  end
  line('', nil, 0, 0)
  if type(speed_line) == 'string' and speed_line ~= '' then
    line(speed_line, nil, 0, 0)
  end
  for _, legend in ipairs(M.LEGEND) do
    line(legend, nil, 0, 0)
  end
  return out
end

return M
