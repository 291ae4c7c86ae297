-- lloom.nvim's commands.  Starting the server is require('lloom').setup()'s job (or
-- vim.lsp.enable('lloom') on Nvim 0.11+); see :help lloom.
if vim.g.loaded_lloom or vim.fn.has('nvim-0.7') == 0 then
  return
end
vim.g.loaded_lloom = true

local command = vim.api.nvim_create_user_command
command('LLooMWeave', function()
  require('lloom').weave()
end, { desc = 'LLooM: weave at the cursor and pick a beam' })
command('LLooMAccept', function()
  require('lloom').accept()
end, { desc = 'LLooM: insert the best beam at the cursor' })
command('LLooMInfo', function()
  require('lloom').info()
end, { desc = 'LLooM: client status, settings in force, last speed line' })
